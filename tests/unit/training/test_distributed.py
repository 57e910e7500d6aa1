"""Training under torch.distributed: 2 processes on 127.0.0.1 (gloo) train the model one process
trains with the same global batch and seed. `batch_size` is each process's batch, so 2 processes
at batch_size 8 train on the global batches of 16 rows one process at batch_size 16 trains on.

Tolerance: the `ae` preset draws no noise, so the only difference is the order of floating-point
sums (each rank's batch mean, then the all-reduce; one process sums the whole batch at once). After
the 10 Adam steps here that left the weights 1.1e-6 apart at most (float32 ulps, amplified by Adam's
division by √v); we allow 1e-4 absolute on weights of order 0.1-1, while ranks that skip the gradient
average (each training on its half alone) end 1.3e-2 apart. Logged losses: 1e-4 relative.

Local SGD (`distributed: {sync_every: K}`): the ranks train apart between averages, so the model
is not the single process's; what must hold is that every rank ends each epoch with the same model
(the one rank 0 validates, checkpoints and saves) and that a resumed run continues as an
uninterrupted one.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from fds import FDS
from fds.config import make_config
from fds.data.stream import Rows
from fds.errors import ConfigError
from fds.training import distributed
from tests.cli_helpers import refuses_train_config

WEIGHTS_ATOL = 1e-4
LOSS_RTOL = 1e-4
PARAMS: dict[str, Any] = {
    "preset": "ae",
    "latent_dim": 2,
    "epochs": 2,
    "batch_size": 16,
    "val_fraction": 0.25,
    "seed": 3,
    "threads": 1,
    "verbose": False,
}
BOUNDS = {f"x{i}": (-8.0, 8.0) for i in range(5)}  # DP reads no statistics from the rows
DP = {"epsilon": 8.0, "max_grad_norm": 1.0, "noise_seed": 11, "delta": 1e-3}
# 4 global batches of 2 × 8 rows per epoch: steps 0-1 average gradients (DDP), then each rank
# steps alone and the weights are averaged after steps 4, 7, … and at every epoch's end
LOCAL_SGD = {"sync_every": 3, "warmup_steps": 2}


def _rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(96, 2))
    return (z @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(96, 5))).astype(np.float64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit(params: dict[str, Any], run_dir: Path | None = None, resume: bool = False) -> FDS:
    return FDS(**params).fit(_rows(), run_dir=run_dir, resume=resume)


def _save(model: FDS, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.numpy() for k, v in model.model_.state_dict().items()}
    np.savez(out / "weights.npz", **weights)
    (out / "history.json").write_text(json.dumps(model.history_))
    (out / "privacy.json").write_text(json.dumps(model.privacy_))


def _worker(rank: int, port: int, out: Path, params: dict[str, Any], job: str) -> None:
    """One rank: join the group over TCP, train, and (rank 0) write what it trained."""
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    try:
        if job == "resume":
            try:
                _fit(params, run_dir=out / "run", resume=True)
            except ConfigError as exc:
                (out / f"error{rank}.txt").write_text(str(exc))
            return
        if job == "local-sgd":  # every rank writes what it holds, uninterrupted and resumed
            _save(_fit(params), out / f"full{rank}")
            # a warm-up longer than the run: every step averages the gradients, as DDP does
            warm = {"sync_every": 5, "warmup_steps": 10**6}
            _save(_fit(params | {"distributed": warm}), out / f"warm{rank}")
            _fit(params | {"epochs": 1}, run_dir=out / "run")
            _save(_fit(params, run_dir=out / "run", resume=True), out / f"resumed{rank}")
            return
        if job == "local-sgd-resume":  # every rank writes what it holds, uninterrupted and resumed
            _save(_fit(params), out / f"full{rank}")
            _fit(params | {"epochs": 1}, run_dir=out / "run")
            _save(_fit(params, run_dir=out / "run", resume=True), out / f"resumed{rank}")
            return
        model = _fit(params)
        if rank == 0:
            _save(model, out)
    finally:
        torch.distributed.destroy_process_group()


def _two_ranks(tmp_path: Path, params: dict[str, Any], job: str = "fit") -> None:
    context = mp.start_processes(
        _worker, args=(_free_port(), tmp_path, params, job), nprocs=2, join=False
    )
    for process in context.processes:
        process.join(timeout=240)
    alive = [p for p in context.processes if p.is_alive()]
    for process in alive:
        process.kill()
    assert not alive, "a rank did not finish within 240 s"
    assert all(p.exitcode == 0 for p in context.processes), "a rank failed"


def _weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "weights.npz") as saved:
        return dict(saved)


@pytest.mark.slow
@pytest.mark.parametrize("privacy", [None, DP], ids=["sgd", "dp-sgd"])
def test_two_processes_train_the_single_process_model(tmp_path: Path, privacy) -> None:
    params = PARAMS | ({"privacy": privacy, "bounds": BOUNDS} if privacy else {})
    _two_ranks(tmp_path, params | {"batch_size": PARAMS["batch_size"] // 2})
    single = _fit(params)
    two = _weights(tmp_path)
    for name, value in single.model_.state_dict().items():
        np.testing.assert_allclose(
            two[name], value.numpy(), rtol=0, atol=WEIGHTS_ATOL, err_msg=name
        )
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == len(single.history_) == PARAMS["epochs"]
    for mine, theirs in zip(history, single.history_, strict=True):
        assert mine["step"] == theirs["step"]  # as many global batches per epoch
        for key in ("train_loss", "val_loss", "val_elbo"):
            assert mine[key] == pytest.approx(theirs[key], rel=LOSS_RTOL), key
    if privacy:  # the accountant sees the global Poisson rate and steps
        spent = json.loads((tmp_path / "privacy.json").read_text())
        assert spent["sample_rate"] == single.privacy_["sample_rate"]
        assert spent["epsilon"] == pytest.approx(single.privacy_["epsilon"])


@pytest.mark.slow
def test_resume_with_another_world_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    _fit(PARAMS | {"epochs": 1}, run_dir=tmp_path / "run")  # one process wrote the checkpoint
    _two_ranks(tmp_path, PARAMS, job="resume")
    for rank in (0, 1):
        error = (tmp_path / f"error{rank}.txt").read_text()
        assert "1 process(es)" in error and "not 2" in error


def _ranks_agree_and_resume_exactly(tmp_path: Path) -> dict[str, np.ndarray]:
    """The uninterrupted run's weights, after checking that both ranks saved the same ones and
    that both ranks of the resumed run ended with them."""
    full = _weights(tmp_path / "full0")
    for name, value in _weights(tmp_path / "full1").items():
        np.testing.assert_array_equal(value, full[name], err_msg=name)
    for rank in (0, 1):
        resumed = _weights(tmp_path / f"resumed{rank}")
        for name, value in resumed.items():
            np.testing.assert_allclose(value, full[name], rtol=0, atol=1e-6, err_msg=name)
    return full


@pytest.mark.slow
def test_local_sgd_ranks_end_every_epoch_with_one_model_and_resume_exactly(tmp_path: Path) -> None:
    """Local SGD: both ranks hold the same weights at the end (the best validation epoch's,
    restored, as rank 0 saved them), a run resumed from its first epoch's checkpoint ends with
    the uninterrupted run's weights and log, and the model is not DDP's (the ranks did step
    apart), while warm-up steps are DDP's."""
    params = PARAMS | {"batch_size": 8, "epochs": 3, "distributed": LOCAL_SGD}
    (tmp_path / "run").mkdir()
    _two_ranks(tmp_path, params, job="local-sgd")
    full = _ranks_agree_and_resume_exactly(tmp_path)
    history = json.loads((tmp_path / "full0" / "history.json").read_text())
    again = json.loads((tmp_path / "resumed0" / "history.json").read_text())
    assert [h["val_loss"] for h in again] == pytest.approx([h["val_loss"] for h in history])
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # it trains
    ddp = _fit(PARAMS | {"epochs": 3})  # DDP at 2 × 8 is this model (the test above)
    apart = max(
        float(np.abs(full[name] - value.numpy()).max())
        for name, value in ddp.model_.state_dict().items()
    )
    assert apart > 10 * WEIGHTS_ATOL
    warm = _weights(tmp_path / "warm0")
    for name, value in ddp.model_.state_dict().items():
        np.testing.assert_allclose(
            warm[name], value.numpy(), rtol=0, atol=WEIGHTS_ATOL, err_msg=name
        )


@pytest.mark.slow
def test_local_sgd_ranks_hold_one_weight_average_and_resume_it_exactly(tmp_path: Path) -> None:
    """ema_decay under local SGD: between averages each rank's moving average follows its own
    weights; the ranks still end with the same averaged model (settle averages the averages
    too), and a resumed run ends with the uninterrupted one's."""
    params = PARAMS | {"batch_size": 8, "epochs": 3, "distributed": LOCAL_SGD, "ema_decay": 0.9}
    (tmp_path / "run").mkdir()
    _two_ranks(tmp_path, params, job="local-sgd-resume")
    _ranks_agree_and_resume_exactly(tmp_path)


@pytest.mark.parametrize(
    ("distributed_option", "culprit"),
    [
        ({"sync_every": 0}, "distributed.sync_every"),
        ({"sync_every": 2.5}, "distributed.sync_every"),
        ({"warmup_steps": -1}, "distributed.warmup_steps"),
        ({"sync_evry": 4}, "distributed.sync_evry"),
    ],
)
def test_bad_distributed_options_are_config_errors_naming_the_field(
    distributed_option, culprit
) -> None:
    with pytest.raises(ConfigError, match=culprit.replace(".", r"\.")):
        make_config(distributed=distributed_option)


def test_the_cli_refuses_a_bad_sync_option_in_one_line(tmp_path: Path) -> None:
    refuses_train_config(tmp_path, "distributed:\n  sync_every: 0\n", "distributed.sync_every")


def test_local_sgd_with_dp_sgd_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"sync_every=4 .*privacy"):
        make_config(distributed={"sync_every": 4}, privacy=DP)
    make_config(distributed={"sync_every": 1}, privacy=DP)  # DDP with DP-SGD is fine


def test_one_process_ignores_the_sync_option() -> None:
    """Outside torchrun local SGD has no ranks to average: the hooks do nothing."""
    params = PARAMS | {"epochs": 1, "val_fraction": 0.0}
    plain = _fit(params)
    local = _fit(params | {"distributed": {"sync_every": 4, "warmup_steps": 1}})
    for name, value in plain.model_.state_dict().items():
        assert torch.equal(value, local.model_.state_dict()[name]), name


def test_a_resume_with_another_global_batch_is_refused() -> None:
    two = _World2()
    distributed.check_resume({"world_size": 2, "global_batch": 32}, two, 32, "ckpt")
    distributed.check_resume({}, distributed.Single(torch.device("cpu")), 16, "ckpt")
    with pytest.raises(ConfigError, match="global batches of 32 rows; this run's would have 16"):
        distributed.check_resume({"world_size": 2, "global_batch": 32}, two, 16, "ckpt")
    # written by 2 processes when batch_size was the global batch: its batches are unknown
    with pytest.raises(ConfigError, match="batch_size was the global batch"):
        distributed.check_resume({"world_size": 2}, two, 32, "ckpt")


def test_fewer_training_rows_than_processes_is_a_config_error(monkeypatch) -> None:
    from fds.config import make_config
    from fds.data.codec import Block
    from fds.models import build_model
    from fds.training.trainer import Trainer

    monkeypatch.setattr(distributed, "current", lambda device, sync: _World2())
    config = make_config(preset="ae", latent_dim=2, hidden_dims=(8,), batch_size=4).resolved()
    net = build_model(config, [Block("real", 0, 3, "x")], None)
    one_row = Rows(np.zeros((1, 3), dtype=np.float32), np.arange(1))
    with pytest.raises(ConfigError, match="1 training rows cannot feed 2 processes"):
        Trainer(net, config, one_row, show_progress=False)


class _World2(distributed.Single):
    world_size = 2

    def __init__(self) -> None:
        super().__init__(torch.device("cpu"))


def test_a_source_that_shards_itself_gets_its_rank_and_world_size() -> None:
    class Streamed:
        def shard(self, rank: int, world_size: int) -> tuple[int, int]:
            return rank, world_size

    world = _World2()
    world.rank = 1
    assert distributed.shard_source(Streamed(), world) == (1, 2)
    rows = Rows(np.zeros((6, 2)), np.arange(6))
    assert distributed.shard_source(rows, world) is rows  # Rows are sharded batch by batch
    one = distributed.Single(torch.device("cpu"))
    assert isinstance(distributed.shard_source(Streamed(), one), Streamed)


def test_outside_torchrun_training_is_one_process(monkeypatch) -> None:
    for name in distributed.LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with distributed.session("cpu") as world:
        assert (world.rank, world.world_size, world.main) == (0, 1, True)
    assert not torch.distributed.is_initialized()


def test_cuda_without_a_gpu_is_a_config_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: device: cuda is valid here")
    with pytest.raises(ConfigError, match="no CUDA device"):
        distributed.resolve_device("cuda")
