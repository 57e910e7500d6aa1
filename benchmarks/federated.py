"""Federated vs centralized training of the core benchmark's `vae` (issue 4).

Data: Fashion-MNIST when installed (else scikit-learn's digits), partitioned into `--sites` sites.
Model: the core benchmark's spec (MLP 512-512, 16 latents, Bernoulli likelihood, batch 128).
"Same number of epochs of data": centralized training runs R epochs; the federation runs R rounds
of 1 local epoch at every site, so each row is visited R times in both.

Scenarios: iid/FedAvg, dirichlet α=0.5/FedAvg, dirichlet α=0.1 with FedAvg and FedProx (μ=0.01).
Per scenario: held-out ELBO of the final global model on the test split (nats per image, higher is
better) and its gap to centralized, in % of |centralized ELBO| (goal: within 3% for iid and
α=0.5); payload bytes sent per round per site (down = global weights, up = the site's update);
seconds per round in simulation (Ray, 1 CPU per site). With `--deployment`, an iid FedAvg run of
`--deployment-rounds` rounds (default 2) on a loopback Deployment Engine (SuperLink + one SuperNode
per site on 127.0.0.1) gives the deployment's seconds per round; every message there starts a
fresh ClientApp process (torch import), so it is far slower than simulation on one machine.

    OMP_NUM_THREADS=1 FLWR_TELEMETRY_ENABLED=0 .venv/bin/python benchmarks/federated.py \
        [--sites 10] [--rounds 10] [--data auto|digits|fashion-mnist] [--deployment]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import MODEL_SPEC, emit_json, environment, print_table

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

SCENARIOS = (
    ("iid", "fedavg", {"partition": "iid"}, {}),
    ("dirichlet 0.5", "fedavg", {"partition": "dirichlet", "alpha": 0.5}, {}),
    ("dirichlet 0.1", "fedavg", {"partition": "dirichlet", "alpha": 0.1}, {}),
    ("dirichlet 0.1", "fedprox", {"partition": "dirichlet", "alpha": 0.1}, {"proximal_mu": 0.01}),
)


def _data_name(choice: str) -> str:
    if choice != "auto":
        return choice
    from fds.data.datasets import available_datasets

    ok = {d["name"]: d.get("available", True) for d in available_datasets()}
    return "fashion-mnist" if ok.get("fashion-mnist") else "digits"


def _test_split(name: str) -> Any:
    from fds.data.datasets import load_builtin

    return load_builtin(name, split="test").X


def _centralized(params: dict[str, Any], rounds: int, X_test: Any) -> dict[str, Any]:
    from fds.data.files import read_data
    from fds.estimator import FDS

    started = time.perf_counter()
    model_params = {k: v for k, v in params.items() if k != "data"}
    model = FDS(**model_params, epochs=rounds, verbose=False).fit(read_data(params["data"]).X)
    return {"elbo": model.score(X_test), "seconds": time.perf_counter() - started}


def _federated(
    params: dict[str, Any], federated: dict[str, Any], workdir: Path, X_test: Any
) -> dict[str, Any]:
    from fds.estimator import FDS
    from fds.federated.settings import make_settings
    from fds.workflows.federated import simulate_params

    summary = simulate_params(params, make_settings(**federated), workdir / "run", verbose=False)
    return {
        "elbo": FDS.load(workdir / "run").score(X_test),
        "seconds_per_round": summary["seconds_per_round"],
        "bytes_down": summary["bytes_down_per_site_per_round"],
        "bytes_up": summary["bytes_up_per_site_per_round"],
        "seconds": summary["seconds"],
    }


def _deployment(params: dict[str, Any], federated: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from fds.federated.loopback import loopback_federation
    from fds.workflows.federated import write_partitions
    from fds.workflows.federated_app import write_app

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "fed.yaml"
    config.write_text(yaml.safe_dump(params | {"federated": federated}))
    sites = write_partitions(config, workdir / "sites")["files"]
    write_app(config, workdir / "app", workdir / "run")
    with loopback_federation(sites, workdir) as federation:
        started = time.perf_counter()
        run = federation.run(workdir / "app", timeout=3600)
        seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"flwr run failed: {run.stderr[-1000:]}")
    rounds = [json.loads(x) for x in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    return {
        "seconds_per_round": sum(r["seconds"] for r in rounds) / len(rounds),
        "seconds_total": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--data", default="auto", choices=("auto", "digits", "fashion-mnist"))
    parser.add_argument("--deployment", action="store_true")
    parser.add_argument(
        "--deployment-rounds", type=int, default=2, help="rounds of the loopback deployment run"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--local-batch-size",
        type=int,
        default=128,
        help="the sites' minibatch size (centralized training keeps 128): a site holds 1/sites of "
        "the rows, so smaller local batches give it as many optimizer steps per epoch of data",
    )
    args = parser.parse_args()
    data = _data_name(args.data)
    params = MODEL_SPEC | {"data": data, "seed": args.seed, "batch_size": 128, "val_fraction": 0.1}
    X_test = _test_split(data)
    central = _centralized(params, args.rounds, X_test)
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="fds-fed-bench-") as tmp:
        for i, (partition, strategy, part, strategy_params) in enumerate(SCENARIOS):
            federated = {
                "sites": args.sites,
                "rounds": args.rounds,
                "local_epochs": 1,
                "strategy": strategy,
                "strategy_params": strategy_params,
                "min_sites": args.sites,
                "seed": args.seed,
                **part,
            }
            local = params | {"batch_size": args.local_batch_size}
            result = _federated(local, federated, Path(tmp) / str(i), X_test)
            gap = 100 * (central["elbo"] - result["elbo"]) / abs(central["elbo"])
            results.append(
                {"partition": partition, "strategy": strategy, "gap_percent": gap} | result
            )
            rows.append(
                [
                    partition,
                    strategy,
                    result["elbo"],
                    gap,
                    result["bytes_down"],
                    result["bytes_up"],
                    result["seconds_per_round"],
                ]
            )
        deployment = None
        if args.deployment:
            federated = {
                "sites": args.sites,
                "rounds": args.deployment_rounds,
                "min_sites": args.sites,
                "seed": args.seed,
                "timeout": 3600,
            }
            deployment = _deployment(params, federated, Path(tmp) / "deployment")
    print(
        f"data: {data}, {args.sites} sites, {args.rounds} rounds × 1 local epoch at local batch "
        f"{args.local_batch_size}; centralized {args.rounds} epochs at batch 128: held-out ELBO "
        f"{central['elbo']:.2f} nats"
    )
    print_table(
        [
            "partition",
            "strategy",
            "held-out ELBO",
            "gap %",
            "bytes down/site/round",
            "bytes up/site/round",
            "s/round (simulation)",
        ],
        rows,
    )
    if deployment is not None:
        print(f"loopback deployment (iid, fedavg): {deployment['seconds_per_round']:.2f} s/round")
    emit_json(
        {
            "benchmark": "federated",
            "data": data,
            "sites": args.sites,
            "rounds": args.rounds,
            "local_batch_size": args.local_batch_size,
            "centralized_elbo": central["elbo"],
            "scenarios": results,
            "deployment": deployment,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
