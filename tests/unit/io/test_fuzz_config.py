"""Property-based: the config loader over any bytes, any YAML text and any YAML mapping of keys
and values (valid field names beside junk, numbers at and beyond every bound, text that looks like
numbers, dates, nesting) either returns parameters that resolve, dump and read back unchanged, or
refuses with one ConfigError line naming the file. Never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from fds.config import FDSConfig, dump_yaml, load_yaml, make_config
from fds.errors import ConfigError

FIELDS = sorted(FDSConfig.model_fields)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.sampled_from([0, 1, 2, 3, -1, 2**32 - 1, 2**32, 10**8, 10**400, 1e23, 1e308, 0.5])
    | st.sampled_from(["1e23", "vae", "fds", "mixture", "conv", "adam", "census", "", "[/red]"])
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(FIELDS), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = (
    st.sampled_from([*FIELDS, "data", "data_root"])
    | st.text(max_size=8)
    | st.integers()
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
)
# YAML spellings a dumped mapping never holds: tags, anchors, dates, octal, sexagesimal, merges
YAML_SNIPPETS = st.sampled_from(
    [
        "seed: 2001-02-30\n",
        "seed: 2001-12-14t21:59:43.10-05:00\n",
        "seed: 0o17\n",
        "seed: 1:20\n",
        "latent_dim: 99999999999999999999999999999999999999\n",
        "kl: .nan\n",
        "lr: -.inf\n",
        "hidden_dims: &a [8, *a]\n",
        "<<: {epochs: 1}\n",
        "? [a, b]\n: 1\n",
        "!!binary aGVsbG8=: 1\n",
        "seed: !!float 1e400\n",
        "sensitive: !!set {a, b}\n",
        "privacy: {epsilon: 1, noise_seed: -1}\n",
        "categories: {sex: [[f], m]}\n",
        "---\nepochs: 1\n---\nepochs: 2\n",
        "\ufeffepochs: 1\n",
    ]
)


def _load(content: bytes) -> dict[str, Any] | None:
    """load_yaml on `content`; None for a ConfigError that names the file (the only failure)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_bytes(content)
        try:
            params = load_yaml(path)
        except ConfigError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
            event("refused by the loader")
            return None
    return params


def _round_trip(params: dict[str, Any]) -> None:
    """Loaded parameters resolve (or refuse in one line), and the resolved config dumps to YAML
    that reads back to the same config."""
    model = {k: v for k, v in params.items() if k not in ("data", "data_root")}
    try:
        config = make_config(**model).resolved()
    except ConfigError:
        event("loaded, refused when resolved")
        return
    event("accepted")
    again = _load(dump_yaml(config.model_dump(mode="json")).encode())
    assert again is not None and make_config(**again) == config


@given(st.binary(max_size=200))
def test_any_bytes(content: bytes) -> None:
    params = _load(content)
    if params is not None:
        _round_trip(params)


@given(st.text(max_size=200))
def test_any_text(content: str) -> None:
    params = _load(content.encode("utf-8"))
    if params is not None:
        _round_trip(params)


@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_mapping(mapping: dict[Any, Any]) -> None:
    params = _load(yaml.safe_dump(mapping).encode())
    if params is not None:
        _round_trip(params)


@given(
    st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=4),
    st.lists(YAML_SNIPPETS, max_size=2),
)
def test_field_values_and_yaml_spellings(fields: dict[str, Any], snippets: list[str]) -> None:
    text = yaml.safe_dump(fields) + "".join(snippets)
    params = _load(text.encode())
    if params is not None:
        _round_trip(params)


SIZE_FIELDS = ["latent_dim", "mixture_components", "batch_size", "epochs", "seed", "private_dim"]
ANY_INTEGER = st.integers() | st.integers(-(10**500), 10**500) | st.floats()


@given(
    st.dictionaries(st.sampled_from(SIZE_FIELDS), ANY_INTEGER, max_size=3),
    st.dictionaries(
        st.sampled_from(["hidden_dims", "conv_channels"]), st.lists(ANY_INTEGER, max_size=3)
    ),
    st.sampled_from(["auto", "mlp", "conv"]),
    st.sampled_from(["auto", "gaussian", "mixture"]),
)
def test_sizes_at_any_magnitude(
    sizes: dict[str, Any], widths: dict[str, list], architecture: str, likelihood: str
) -> None:
    mapping = sizes | widths | {"architecture": architecture, "likelihood": likelihood}
    params = _load(yaml.safe_dump(mapping).encode())
    if params is not None:
        _round_trip(params)
