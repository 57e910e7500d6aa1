"""Built-in data sets: one generator or loader per module, looked up by name in the registry."""

from fds.data.datasets.balls import make_balls, render_balls
from fds.data.datasets.census import make_census
from fds.data.datasets.registry import Dataset, available_datasets, is_builtin, load_builtin
from fds.data.datasets.shapes import make_shapes, render_shapes

__all__ = [
    "Dataset",
    "available_datasets",
    "is_builtin",
    "load_builtin",
    "make_balls",
    "make_census",
    "make_shapes",
    "render_balls",
    "render_shapes",
]
