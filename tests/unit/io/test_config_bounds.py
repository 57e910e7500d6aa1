"""Every config field has a type and bounds, and the YAML loader refuses what is not a config:
each failure is one ConfigError naming the field (and the file), before anything is allocated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fds.config
from fds.config import (
    FDSConfig,
    check_run_keys,
    load_yaml,
    make_config,
    parameter_floor,
    read_yaml_mapping,
)
from fds.data.image_codec import ImageCodec
from fds.data.tabular import TabularCodec
from fds.errors import ConfigError
from fds.models.build import build_model


@pytest.mark.parametrize(
    ("params", "culprit"),
    [
        ({"hidden_dims": [0]}, "hidden_dims.0"),
        ({"hidden_dims": [64, -4]}, "hidden_dims.1"),
        ({"conv_channels": [0]}, "conv_channels.0"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": 1e23}, "seed"),
        ({"seed": "1e23"}, "seed"),
        ({"seed": 0.5}, "seed"),
        ({"latent_dim": True}, "latent_dim"),
        ({"epochs": "3"}, "epochs"),
        ({"lr": float("inf")}, "lr"),
        ({"kl": float("nan")}, "kl"),
        ({"bounds": {"age": [0, float("inf")]}}, "bounds.age.1"),
        ({"categories": {"sex": [["f", "m"]]}}, "categories.sex.0"),
        ({"privacy": {"epsilon": 1.0, "noise_seed": -1}}, "privacy.noise_seed"),
        ({"privacy": {"epsilon": True}}, "privacy.epsilon"),
        ({"latent_dim": 100_000_000}, "latent_dim=100000000"),
        ({"hidden_dims": [10**6, 10**6]}, "hidden_dims=[1000000, 1000000]"),
        ({"architecture": "conv", "conv_channels": [10**6, 10**6]}, "conv_channels="),
        ({"likelihood": "mixture", "mixture_components": 10**10}, "mixture_components="),
        ({"latent_dim": 10**400}, "needs at least 10^402 parameters"),
    ],
)
def test_out_of_range_or_mistyped_fields_are_one_line_naming_the_field(
    params: dict, culprit: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(**params)
    message = str(err.value)
    assert culprit in message and "\n" not in message
    assert "Value error" not in message  # pydantic's wording stays out of the line


def test_a_yaml_number_without_a_dot_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"YAML reads 1e23 as text"):
        make_config(seed="1e23")


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ({"seed": 2**32 - 1}, "seed", 2**32 - 1),
        ({"seed": 1.0e3}, "seed", 1000),
        ({"latent_dim": 3.0}, "latent_dim", 3),
        ({"categories": {"sex": ["f", "m", 3, True]}}, "categories", {"sex": ["f", "m", 3, True]}),
    ],
)
def test_edge_values_inside_the_bounds_are_kept(params: dict, field: str, value: object) -> None:
    assert getattr(make_config(**params), field) == value


def test_the_memory_limit_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fds.config, "memory_bytes", lambda: 2**20)  # a 1 MB machine
    with pytest.raises(ConfigError, match=r"hidden_dims=\[256, 256\] needs at least"):
        make_config()
    make_config(hidden_dims=[16], latent_dim=2)  # a small model still fits


@pytest.mark.parametrize(
    "params",
    [
        {"hidden_dims": [64, 32], "latent_dim": 5},
        {"hidden_dims": [], "latent_dim": 4},
        {"hidden_dims": [16], "likelihood": "mixture", "mixture_components": 7},
        {"architecture": "conv", "conv_channels": [8, 16], "likelihood": "bernoulli"},
    ],
)
def test_the_parameter_estimate_never_exceeds_the_model(params: dict) -> None:
    """A lower bound: the limit refuses no model that would in fact fit."""
    config = make_config(**params).resolved()
    if config.architecture == "conv":
        codec = ImageCodec.fit(np.zeros((4, 16, 16), dtype=np.uint8))
        chw = codec.chw
    else:
        codec = TabularCodec.fit(pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 3.0]}))
        chw = None
    model = build_model(config, codec.blocks, chw)
    actual = sum(p.numel() for p in model.parameters())
    assert sum(parameter_floor(config).values()) <= actual


def test_config_assignment_is_validated_too() -> None:
    config = FDSConfig()
    with pytest.raises(ValueError, match="seed"):
        config.seed = -1


# ----------------------------------------------------------------------------- the YAML loader
@pytest.mark.parametrize(
    ("content", "culprit"),
    [
        (b"1: 2\nepochs: 1\n", "option names are text, got int 1"),
        (b"epochs: 1\n# caf\xe9\n", "is not UTF-8 text (byte 15)"),
        (b"seed: 2001-02-30\n", "a value YAML cannot read: day is out of range"),
        (b"- a\n- b\n", "must hold a mapping of option: value, got list"),
        (b"epochs: [1\n", "is not valid YAML at line 2"),
        (b"[" * 5000, "nests too deeply to be a config"),
        (b"hidden_dims: [-4]\n", "invalid option hidden_dims.0"),
        (b"seed: 1e23\n", "invalid option seed"),
        (b"data: 123\n", "data must be a path or a built-in data set name, got int 123"),
        (b"data: [a, b]\n", "data must be a path or a built-in data set name, got list"),
        (b"data_root: {x: 1}\n", "data_root must be a path"),
        (b"data: ''\n", "data must be a path"),
        (b"!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, culprit: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert str(path) in str(err.value) and culprit in str(err.value)


def test_a_folder_or_an_oversized_file_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        read_yaml_mapping(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="larger than"):
        read_yaml_mapping(big)


def test_a_good_config_file_reads_back_with_or_without_a_byte_order_mark(tmp_path: Path) -> None:
    text = "data: census\ndata_root: null\nlatent_dim: 4\nhidden_dims: [16, 8]\n"
    path = tmp_path / "ok.yaml"
    for encoding in ("utf-8", "utf-8-sig"):  # Notepad writes the mark
        path.write_bytes(text.encode(encoding))
        assert load_yaml(path) == {"data": "census", "latent_dim": 4, "hidden_dims": [16, 8]}


def test_data_arguments_may_be_paths() -> None:
    assert check_run_keys({"data": Path("t.csv"), "seed": 1}) == {"data": "t.csv"}
