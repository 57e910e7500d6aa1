"""Flower's Deployment Engine on loopback: one SuperLink, two SuperNodes (each with its own site
file via --node-config), `flwr run` for two rounds; the run directory holds a loadable model, and
every process group started here is gone afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fds.estimator import FDS
from fds.workflows.federated import write_partitions
from fds.workflows.federated_app import write_app

BIN = Path(sys.executable).parent
DEADLINE = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    """A live (non-zombie) process in group `pgid`; zombies wait for a PID 1 that may not reap."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_loopback_deployment_two_rounds(tmp_path: Path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": "digits",
                "preset": "vae",
                "latent_dim": 3,
                "hidden_dims": [16],
                "batch_size": 64,
                "seed": 0,
                "federated": {"sites": 2, "rounds": 2, "min_sites": 2, "timeout": 60},
            }
        )
    )
    sites = write_partitions(config, tmp_path / "sites")["files"]
    write_app(config, tmp_path / "app", tmp_path / "run")
    port = _free_port()
    home = tmp_path / "flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = os.environ | {
        "FLWR_TELEMETRY_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
        "FLWR_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                [
                    str(BIN / "flower-superlink"),
                    "--insecure",
                    "--isolation",
                    "subprocess",
                    "--disable-runtime-dependency-installation",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--database",
                    str(tmp_path / "state.db"),
                ],
                tmp_path / "superlink.log",
                env,
            )
        )
        time.sleep(3)
        for i, (name, path) in enumerate(sites.items()):
            procs.append(
                _start(
                    [
                        str(BIN / "flower-supernode"),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(_free_port()),
                        "--node-config",
                        f"data-path='{path}' site-name='{name}'",
                    ],
                    tmp_path / f"supernode{i}.log",
                    env,
                )
            )
        run = subprocess.run(
            [str(BIN / "flwr"), "run", str(tmp_path / "app"), "local", "--stream"],
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        rounds = [
            json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        ]
        assert [r["round"] for r in rounds] == [1, 2]
        assert set(rounds[-1]["val_elbo_per_site"]) == set(sites)
        model = FDS.load(tmp_path / "run")
        assert model.sample(2).shape == (2, 8, 8)
    finally:
        _stop(procs)
    assert not [p.pid for p in procs if _group_alive(p.pid)]
