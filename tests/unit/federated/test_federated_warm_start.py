"""A warm start (`federated.init_model`, `--init-model`): the server's first global model is a
centrally trained model directory's, and a model that does not fit the federation is refused
with one line before any round runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from flwr.app import Context, Message
from typer.testing import CliRunner

from fds.cli import app
from fds.config import make_config
from fds.data.codecs import codec_from_json
from fds.errors import ConfigError
from fds.estimator import FDS
from fds.federated.settings import make_settings
from fds.federated.warm import check_codec, load_init_model

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
runner = CliRunner()
TINY = {"preset": "vae", "latent_dim": 3, "hidden_dims": [16], "batch_size": 64, "seed": 0}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, digits: np.ndarray) -> Path:
    """A tiny model trained centrally on the digits every site of a `digits` federation reads."""
    out = tmp_path_factory.mktemp("warm") / "model"
    FDS(**TINY, epochs=1, verbose=False).fit(digits).save(out)
    return out


def _simulate(tmp_path: Path, model: dict, init: Path, *flags: str):
    config = tmp_path / "fed.yaml"
    fed = {"sites": 2, "rounds": 1, "seed": 0}
    config.write_text(yaml.safe_dump({"data": "digits"} | model | {"federated": fed}))
    args = ["federated", "simulate", "-c", str(config), "-o", str(tmp_path / "run")]
    return runner.invoke(app, [*args, "--init-model", str(init), *flags])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"latent_dim": 4}, "latent_dim is 3 there, 4 here"),
        ({"preset": "beta_vae"}, "preset is 'vae' there, 'beta_vae' here"),
        ({"hidden_dims": [32]}, "hidden_dims"),
        ({"likelihood": "gaussian"}, "likelihood"),
    ],
)
def test_a_mismatched_init_model_is_refused_in_one_line_before_any_round(
    tmp_path, tiny_model: Path, change: dict, named: str
) -> None:
    result = _simulate(tmp_path, TINY | change, tiny_model)
    assert result.exit_code == 2, result.output
    assert named in result.output and "federated.init_model" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_an_init_model_that_is_not_a_model_directory_is_refused(tmp_path) -> None:
    result = _simulate(tmp_path, TINY, tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "model not found" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_images_of_another_dtype_or_shape_are_refused(tiny_model: Path, digits) -> None:
    """uint8 images are scaled by 1/255; a model trained on float images saw another scale."""
    init = load_init_model(tiny_model, make_config(**TINY).resolved())
    check_codec(init, init.codec)  # the same codec: accepted
    state = init.codec.to_json()
    with pytest.raises(ConfigError, match="dtype is 'uint8' there, 'float32' at the sites"):
        check_codec(init, codec_from_json(state | {"dtype": "float32"}))
    with pytest.raises(ConfigError, match="height is 8 there, 7 at the sites"):
        check_codec(init, codec_from_json(state | {"height": 7, "width": 7} | _blocks(49)))


def _blocks(n: int) -> dict:
    return {"blocks": [{"kind": "real", "start": 0, "stop": n, "name": "pixels"}]}


def test_a_table_needs_the_same_columns_but_not_the_same_statistics(tmp_path, census) -> None:
    params = {"latent_dim": 3, "hidden_dims": [16], "continuous_transform": "standard"}
    out = tmp_path / "table"
    FDS(**params, epochs=1, verbose=False).fit(census).save(out)
    init = load_init_model(out, make_config(**params).resolved())
    state = init.codec.to_json()
    # the sites' pooled means and deviations differ from the public data's: accepted
    moved = [c | {"center": c["center"] + 1.0, "scale": c["scale"] * 2} for c in state["columns"]]
    check_codec(init, codec_from_json(state | {"columns": moved}))
    # a category the model never saw changes what the network's outputs mean: refused
    categorical = next(c for c in state["columns"] if c["kind"] == "categorical")
    renamed = [
        c | {"categories": ["other", *c["categories"][1:]]} if c is categorical else c
        for c in state["columns"]
    ]
    with pytest.raises(ConfigError, match=f"column '{categorical['name']}'"):
        check_codec(init, codec_from_json(state | {"columns": renamed}))
    # a column fewer: refused
    fewer = FDS(**params, epochs=1, verbose=False).fit(census.drop(columns=[census.columns[0]]))
    with pytest.raises(ConfigError, match="codec does not match the sites' data"):
        check_codec(init, fewer.codec_)


def test_settings_take_init_model_as_a_path() -> None:
    assert make_settings(init_model="runs/public").init_model == "runs/public"
    assert make_settings().init_model is None


def _echo_the_global(msg: Message, context: Context, call_next) -> Message:
    """A Flower mod: each site sends back the global weights it received, unchanged, so the
    aggregate of round 1 is the global model the server sent in round 1."""
    reply = call_next(msg, context)
    if msg.metadata.message_type == "train":
        reply.content["arrays"] = msg.content["arrays"]
    return reply


@pytest.mark.slow  # a Ray simulation: tens of seconds
def test_a_warm_started_federation_sends_the_init_model_in_round_one(
    tmp_path, tiny_model: Path
) -> None:
    from fds.workflows.federated import simulate_params

    params = {"data": "digits"} | TINY
    started = {}
    for name, init in (("warm", str(tiny_model)), ("cold", None)):
        settings = make_settings(sites=2, rounds=1, seed=0, init_model=init, timeout=300)
        simulate_params(
            params, settings, tmp_path / name, verbose=False, client_mods=[_echo_the_global]
        )
        started[name] = FDS.load(tmp_path / name).model_.state_dict()
    expected = FDS.load(tiny_model).model_.state_dict()
    assert started["warm"].keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(started["warm"][key], tensor, rtol=0, atol=1e-6)
    # without it the federation starts from its own random draw
    assert any(not torch.equal(started["cold"][k], t) for k, t in expected.items())
