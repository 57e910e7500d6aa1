"""Update compression on the uplink: float16 reconstructs within float16's precision, top-k sends
exactly ⌈fraction·size⌉ values per tensor and carries the rest over to the next round (error
feedback), a compressed update that does not fit the model is refused, and a bad spec is one line
(exit 2 at the CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from fds.errors import ConfigError
from fds.federated.compression import compress, expand, kept, parse_compression
from fds.federated.settings import make_settings


def _model(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w": rng.standard_normal((40, 25)).astype(np.float32),
        "b": rng.standard_normal(7).astype(np.float32),
    }


def _record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in arrays.items()})


def _sent_values(record: ArrayRecord) -> int:
    return sum(a.numpy().size for k, a in record.items() if k.endswith("value"))


def test_float16_round_trip_is_within_half_precision() -> None:
    start, delta = _model(0), {k: 0.01 * v for k, v in _model(1).items()}
    sent, residual = compress(delta, parse_compression("float16"), None)
    full = expand(sent, _record(start), parse_compression("float16"))
    for key in start:
        got = full[key].numpy() - start[key]
        np.testing.assert_allclose(got, delta[key], rtol=1e-3, atol=1e-6)
        assert full[key].numpy().dtype == np.float32
        # the residual is exactly what float16 lost
        np.testing.assert_allclose(got + residual[key], delta[key], rtol=0, atol=1e-7)
    assert sum(len(a.data) for a in sent.values()) < 0.6 * sum(v.nbytes for v in delta.values())


def test_topk_sends_exactly_k_values_and_carries_the_rest_over() -> None:
    how = parse_compression("topk:0.1")
    start, delta = _model(0), _model(2)
    sent, residual = compress(delta, how, None)
    assert _sent_values(sent) == kept(1000, 0.1) + kept(7, 0.1) == 100 + 1
    full = expand(sent, _record(start), how)
    for key in start:
        applied = full[key].numpy() - start[key]
        # what was sent plus what was kept back is the whole update
        np.testing.assert_allclose(applied + residual[key], delta[key], atol=1e-6)
        # the entries sent are the largest in magnitude
        assert np.abs(delta[key][applied != 0]).min() >= np.abs(delta[key][applied == 0]).max()
    # next round: an update of zeros still sends the largest part of the residual
    zeros = {k: np.zeros_like(v) for k, v in delta.items()}
    again, residual2 = compress(zeros, how, residual)
    applied2 = {k: expand(again, _record(start), how)[k].numpy() - start[k] for k in start}
    assert _sent_values(again) == 101
    for key in start:
        np.testing.assert_allclose(applied2[key] + residual2[key], residual[key], atol=1e-6)
        assert np.abs(applied2[key]).sum() > 0


def test_error_feedback_delivers_a_constant_update_in_full_over_rounds() -> None:
    """Top-k 10 % of a constant update whose entries differ tenfold, 30 rounds: what was delivered
    plus the residual is the total update (nothing lost), and most of it has been delivered."""
    how = parse_compression("topk:0.1")
    start = {"w": np.zeros(50, dtype=np.float32)}
    step = {"w": np.linspace(0.1, 1.0, 50, dtype=np.float32)}
    residual, delivered = None, np.zeros(50, dtype=np.float32)
    for _ in range(30):
        sent, residual = compress(step, how, residual)
        delivered += expand(sent, _record(start), how)["w"].numpy()
    np.testing.assert_allclose(delivered + residual["w"], 30 * step["w"], rtol=1e-5)
    assert delivered.sum() > 0.7 * 30 * step["w"].sum()


@pytest.mark.parametrize(
    ("how", "tamper"),
    [
        (
            "topk:0.1",
            lambda r: r.__setitem__("w::topk-index", Array(np.array([0, 10**6], np.int32))),
        ),
        ("topk:0.1", lambda r: r.pop("b::topk-value")),
        ("float16", lambda r: r.__setitem__("w", Array(np.zeros((3, 3), np.float16)))),
    ],
)
def test_a_compressed_update_that_does_not_fit_the_model_is_refused(how, tamper) -> None:
    sent, _ = compress(_model(1), parse_compression(how), None)
    tamper(sent)
    with pytest.raises(ValueError):
        expand(sent, _record(_model(0)), parse_compression(how))


@pytest.mark.parametrize("spec", ["gzip", "topk", "topk:0", "topk:1.5", "topk:abc", "float8"])
def test_a_bad_compression_spec_is_one_line(spec: str) -> None:
    with pytest.raises(ConfigError, match="compression") as info:
        make_settings(compression=spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("option", [{"compression": "float16"}, {"keep_optimizer_state": True}])
def test_site_state_with_secure_aggregation_is_refused(option) -> None:
    """SecAgg+ runs in Flower's legacy workflow: no per-site state, and it sums full updates."""
    with pytest.raises(ConfigError, match="secagg"):
        make_settings(secagg=True, **option)


def test_the_cli_flag_refuses_a_bad_spec_with_exit_2_and_writes_nothing(tmp_path) -> None:
    from typer.testing import CliRunner

    from fds.cli import app

    config = tmp_path / "fed.yaml"
    config.write_text("data: digits\npreset: vae\nfederated:\n  sites: 2\n")
    result = CliRunner().invoke(
        app,
        [
            "federated",
            "simulate",
            "-c",
            str(config),
            "-o",
            str(tmp_path / "run"),
            "--compression",
            "topk:2",
        ],
    )
    assert result.exit_code == 2
    assert "topk:2" in result.output and "compression" in result.output
    assert not (tmp_path / "run").exists()
