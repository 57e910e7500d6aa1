"""The loss terms: one per module behind one small protocol (`LossTerm`), listed in `TERMS`.

Adding a term is one module (its pure functions, a `LossTerm` and any `Network` or
`OptimizerGroup` it brings) plus one line in `registry.TERMS`; see docs/architecture.md.
"""

from fds.objectives.attributes import AttributeSpec
from fds.objectives.base import (
    DataLayout,
    LossTerm,
    Network,
    OptimizerGroup,
    TermInputs,
    warmup_factor,
)
from fds.objectives.registry import (
    TERMS,
    applying_terms,
    check_per_example,
    check_trainable_under_dp,
)

__all__ = [
    "TERMS",
    "AttributeSpec",
    "DataLayout",
    "LossTerm",
    "Network",
    "OptimizerGroup",
    "TermInputs",
    "applying_terms",
    "check_per_example",
    "check_trainable_under_dp",
    "warmup_factor",
]
