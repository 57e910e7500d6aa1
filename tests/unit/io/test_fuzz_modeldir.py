"""Property-based: a model directory with any one file replaced — random bytes, a truncated copy,
its JSON with one value swapped for any JSON (NaN and huge numbers included), other tensors — with
or without a re-hashed manifest, either loads as a model that samples and encodes, or is refused
with one typed FDSError line. Never another exception, never code run from the files."""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from safetensors.torch import load, save

from fds import FDS
from fds.data.datasets import make_census
from fds.errors import FDSError
from tests.conftest import FAST

FILES = ("manifest.json", "config.json", "codec.json", "weights.safetensors")
TABLE = make_census(n=120, seed=7)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([1e300, -1e308, 2**70, 0, -1, "", "[/red]"])
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


@functools.cache
def model_files() -> dict[str, bytes]:
    """The four files of one small fitted model (trained once per session)."""
    with tempfile.TemporaryDirectory() as folder:
        FDS(**FAST).fit(TABLE).save(Path(folder) / "model")
        return {name: (Path(folder) / "model" / name).read_bytes() for name in FILES}


@st.composite
def mutated_json(draw, value: Any) -> Any:
    """`value` with one value somewhere inside replaced by any JSON (or a key dropped)."""
    if isinstance(value, dict) and value and draw(st.integers(0, 4)):
        key = draw(st.sampled_from(sorted(value)))
        if draw(st.integers(0, 9)) == 0:
            return {k: v for k, v in value.items() if k != key}
        return value | {key: draw(mutated_json(value[key]))}
    if isinstance(value, list) and value and draw(st.integers(0, 4)):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(mutated_json(value[index])), *value[index + 1 :]]
    return draw(JSON_VALUES)


@st.composite
def mutated_tensors(draw, raw: bytes) -> bytes:
    """The weights with one tensor replaced (any shape, dtype, NaN), dropped, or one added."""
    tensors = load(raw)
    name = draw(st.sampled_from(sorted(tensors)))
    action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
    if action == "drop":
        del tensors[name]
        return save(tensors)
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8]))
    fill = draw(st.sampled_from([0.0, 1.0, -1e30, float("nan"), float("inf")]))
    tensor = (
        torch.full(shape, fill).to(dtype)
        if dtype.is_floating_point
        else torch.zeros(shape, dtype=dtype)
    )
    tensors[name if action == "replace" else "model.extra"] = tensor
    return save(tensors)


@st.composite
def corrupted(draw, files: dict[str, bytes]) -> dict[str, bytes]:
    name = draw(st.sampled_from(FILES))
    original = files[name]
    how = draw(st.sampled_from(["bytes", "truncated", "structured", "structured", "structured"]))
    if how == "bytes":
        content = draw(st.binary(max_size=200))
    elif how == "truncated":
        content = original[: draw(st.integers(0, len(original) - 1))]
    elif name.endswith(".json"):
        content = json.dumps(draw(mutated_json(json.loads(original)))).encode()
    else:
        content = draw(mutated_tensors(original))
    changed = files | {name: content}
    if name != "manifest.json" and draw(st.integers(0, 4)):  # a manifest re-hashed to match
        manifest = json.loads(changed["manifest.json"])
        manifest["files"][name] = hashlib.sha256(content).hexdigest()
        changed["manifest.json"] = json.dumps(manifest).encode()
    event(f"{name}: {how}")
    return changed


@given(data=st.data())
def test_any_corrupted_model_directory_loads_and_works_or_is_one_typed_error(data) -> None:
    files = data.draw(corrupted(model_files()))
    with tempfile.TemporaryDirectory() as folder:
        for file, content in files.items():
            (Path(folder) / file).write_bytes(content)
        try:
            model = FDS.load(folder)
            rows = model.sample(3)
            codes = model.transform(TABLE.head(5))
        except FDSError as exc:
            assert "\n" not in str(exc), str(exc)
            event("refused")
            return
    event("loaded")
    assert len(rows) == 3 and np.asarray(codes).shape[0] == 5
