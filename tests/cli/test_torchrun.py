"""`torchrun --nproc-per-node 2 -m fds train`: one run directory written by rank 0, one summary on
stdout, `--resume` under torchrun continues it, and a resume with another process count is refused
with exit 2 before anything trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[2] / "src"
ENV = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240)


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    data = tmp_path / "rows.csv"
    pd.DataFrame(rng.normal(size=(80, 4)), columns=list("abcd")).to_csv(data, index=False)
    config = tmp_path / "fds.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 16, "latent_dim": 2, "threads": 1}))
    return data, config


def test_torchrun_trains_one_run_and_resumes_it(tmp_path: Path, table) -> None:
    data, config = table
    run = tmp_path / "run"
    args = ["--data", str(data), "--config", str(config), "--preset", "ae", "--epochs", "1"]
    first = _run([*TORCHRUN, "-m", "fds", "train", *args, "--out", str(run), "--json"])
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout)  # one object: rank 1 prints nothing
    assert summary["epochs_trained"] == 1 and (run / "model" / "manifest.json").is_file()
    # batch_size is each process's: 2 × 16 rows per step, 72 training rows → 2 steps
    assert (summary["processes"], summary["global_batch"]) == (2, 32)
    log = (run / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["step"] == 2

    settings = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump(settings | {"epochs": 2}))
    resumed = _run([*TORCHRUN, "-m", "fds", "train", "--resume", str(run), "--json"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["epochs_trained"] == 2
    assert (run / "metrics.jsonl").read_text().splitlines()[0] == log[0]

    alone = _run([sys.executable, "-m", "fds", "train", "--resume", str(run)])
    assert alone.returncode == 2
    assert "2 process(es)" in alone.stderr and "not 1" in alone.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # untouched


def test_torchrun_streams_a_parquet_folder_each_rank_its_own_row_groups(tmp_path: Path) -> None:
    """Under torchrun a streamed table is dealt out by row group, each rank reading only its own
    and training on batch_size rows of it per step."""
    rng = np.random.default_rng(1)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(4):  # 4 files × 2 row groups × 40 rows
        frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=list("abc"))
        frame["kind"] = rng.choice(["x", "y"], size=80)
        frame.to_parquet(parts / f"part-{i}.parquet", row_group_size=40)
    config = tmp_path / "fds.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 8, "latent_dim": 2, "threads": 1}))
    run = tmp_path / "run"
    args = ["--data", str(parts), "--config", str(config), "--preset", "vae", "--epochs", "1"]
    done = _run([*TORCHRUN, "-m", "fds", "train", *args, "--out", str(run), "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["epochs_trained"] == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["stream"] is True
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # 8 row groups of 40 rows, one held out for validation: 7 dealt 4 / 3 to the ranks, both cut
    # to the shorter shard's 120 rows, 8 rows per rank per step: 15 steps (ranks that each read
    # every row group, 280 rows in global batches of 16: 17)
    assert record["step"] == 15
    out = tmp_path / "drawn.csv"
    sample = [sys.executable, "-m", "fds", "sample", "--model", str(run), "-n", "5", "--out"]
    drawn = _run([*sample, str(out)])
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert list(pd.read_csv(out).columns) == ["a", "b", "c", "kind"]


def test_torchrun_local_sgd_is_recorded_and_resumes(tmp_path: Path, table) -> None:
    """`distributed: {sync_every: 2}` (local SGD) trains under torchrun; config.yaml and the
    checkpoint record it, and `--resume` continues the run."""
    from safetensors import safe_open

    from fds.rundir import LAST_CHECKPOINT_FILE

    data, config = table
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump(settings | {"distributed": {"sync_every": 2}}))
    run = tmp_path / "run"
    args = ["--data", str(data), "--config", str(config), "--preset", "vae", "--epochs", "1"]
    first = _run([*TORCHRUN, "-m", "fds", "train", *args, "--out", str(run), "--json"])
    assert first.returncode == 0, first.stderr[-2000:]
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["distributed"] == {"sync_every": 2, "warmup_steps": 0}
    with safe_open(run / LAST_CHECKPOINT_FILE, "pt") as saved:
        loop = json.loads(saved.metadata()["loop"])
    assert (loop["world_size"], loop["sync_every"], loop["warmup_steps"]) == (2, 2, 0)

    (run / "config.yaml").write_text(yaml.safe_dump(recorded | {"epochs": 2}))
    resumed = _run([*TORCHRUN, "-m", "fds", "train", "--resume", str(run), "--json"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["epochs_trained"] == 2
