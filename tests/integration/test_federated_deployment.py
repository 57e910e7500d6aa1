"""Flower's Deployment Engine on loopback: one SuperLink, two SuperNodes (each with its own site
file via --node-config), `flwr run` for two rounds; the run directory holds a loadable model, and
no process started here is alive afterwards. Takes about 80 s alone on 2 cores and 130 s beside
the rest of the suite on a slower host: Flower starts a fresh ClientApp process (importing
torch) for every message, and its SuperNodes poll every 3 s; the waits below leave room for
that, within pytest's 300 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fds.estimator import FDS
from fds.federated.loopback import group_alive, loopback_federation
from fds.workflows.federated import write_partitions
from fds.workflows.federated_app import write_app


@pytest.mark.slow
def test_loopback_deployment_two_rounds(tmp_path: Path) -> None:
    config = tmp_path / "fed.yaml"
    model = {"data": "digits", "preset": "vae", "latent_dim": 3, "hidden_dims": [16]}
    federated = {"sites": 2, "rounds": 2, "min_sites": 2, "timeout": 120}
    config.write_text(yaml.safe_dump(model | {"batch_size": 64, "federated": federated}))
    sites = write_partitions(config, tmp_path / "sites")["files"]
    write_app(config, tmp_path / "app", tmp_path / "run")
    with loopback_federation(sites, tmp_path) as federation:
        run = federation.run(tmp_path / "app", timeout=240)
        processes = list(federation.processes)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert not [p.pid for p in processes if group_alive(p.pid)]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rounds = [json.loads(line) for line in lines]
    assert [r["round"] for r in rounds] == [1, 2]
    assert set(rounds[-1]["val_elbo_per_site"]) == set(sites)
    assert FDS.load(tmp_path / "run").sample(2).shape == (2, 8, 8)
