"""Federated vs centralized training of the core benchmark's `vae` (issues 4 and 17).

Data: Fashion-MNIST when installed (else scikit-learn's digits), partitioned into `--sites` sites.
Model: the core benchmark's spec (MLP 512-512, 16 latents, Bernoulli likelihood, batch 128).
"Same number of epochs of data": centralized training runs R epochs; the federation runs R rounds
of 1 local epoch at every site (a setup with `local_epochs` 1/k: k·R rounds of 1/k epoch), so each
row is visited R times in both.

1. Gap table: per partition (`--partitions`: iid, dirichlet α=0.5, α=0.1) and per setup
   (`--setups`; SETUPS below: `fedavg` = plain FedAvg at local batch 128, `recommended` = the
   setting docs/federated.md recommends), the held-out ELBO of the final global model on the test
   split (nats per image, higher is better) and its gap to centralized in % of |centralized ELBO|
   (goal: ≤ 3 % for iid and α = 0.5), payload bytes per site per round (down = global weights,
   up = the site's update as sent) and seconds per round in simulation (Ray, 1 CPU per actor).
   Every figure is the median over `--seeds` (default 0,1,2: the seed of the data split, of the
   centralized model and of the federation), each seed's federated runs against its own
   centralized run; the seeds' gaps are listed beside.
2. Compression (`--compression`, run on the first partition with the `recommended` setup): the
   same figures with the sites' updates sent as float16 or top-k with error feedback.
3. Scale (`--scale-sites`, 0 to skip): that many simulated sites, `--scale-fraction` of them
   sampled per round (and validating), `--scale-rounds` rounds: seconds per round, bytes per
   round (all sampled sites, both ways) and the peak resident memory of this process and its
   children (the Ray workers), sampled every 0.2 s.

4. Warm start (`--warm-share S --warm-epochs E`, Fashion-MNIST): a seeded random share S of the
   training rows is public; a central model trains on it for E epochs (batch 128); the sites
   split the other rows and the federation starts from that model (`federated.init_model`). Gaps
   are given against two pooled baselines of R epochs: (a) from scratch on all the training rows
   (the usual centralized run: what pooling everything gets) and (b) on the other rows from the
   same warm model (like for like); see benchmarks/_warm.py.

With `--deployment`, an iid FedAvg run of `--deployment-rounds` rounds on a loopback Deployment
Engine (SuperLink + one SuperNode per site on 127.0.0.1) gives the deployment's seconds per round.

    OMP_NUM_THREADS=1 FLWR_TELEMETRY_ENABLED=0 .venv/bin/python benchmarks/federated.py \
        [--sites 10] [--rounds 10] [--data auto|digits|fashion-mnist] [--setups fedavg,recommended] \
        [--partitions iid,dirichlet:0.5,dirichlet:0.1] [--compression float16,topk:0.1] \
        [--seeds 0,1,2] [--scale-sites 100] [--deployment] [--warm-share 0.1 --warm-epochs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import MODEL_SPEC, emit_json, environment, median, print_table
from _warm import pooled_from_warm, split_public, train_warm, write_private

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

# name → (federated: options, model options at the sites); centralized training is unchanged.
# `recommended`: local batch 16, the smallest gap measured (see docs/federated.md, "Matching
# pooled training"): a site holds a tenth of the rows, so smaller batches give it back steps.
# The others are the candidates measured against it: more rounds of half an epoch (with the
# sites' Adam kept), local batch 8, and server optimizers.
SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "fedavg": ({"strategy": "fedavg"}, {"batch_size": 128}),
    "recommended": ({"strategy": "fedavg"}, {"batch_size": 16}),
    "half-kept": (
        {"strategy": "fedavg", "local_epochs": 0.5, "keep_optimizer_state": True},
        {"batch_size": 16},
    ),
    "batch8": ({"strategy": "fedavg"}, {"batch_size": 8}),
    # server optimizers at local batch 16 (Reddi et al. 2021; FedAvgM as Hsu et al. 2019)
    "fedadam-1e-2-1e-3": (
        {"strategy": "fedadam", "strategy_params": {"eta": 1e-2, "tau": 1e-3}},
        {"batch_size": 16},
    ),
    "fedadam-1e-2-1e-2": (
        {"strategy": "fedadam", "strategy_params": {"eta": 1e-2, "tau": 1e-2}},
        {"batch_size": 16},
    ),
    "fedadam-3e-3-1e-2": (
        {"strategy": "fedadam", "strategy_params": {"eta": 3e-3, "tau": 1e-2}},
        {"batch_size": 16},
    ),
    "fedyogi-1e-2-1e-2": (
        {"strategy": "fedyogi", "strategy_params": {"eta": 1e-2, "tau": 1e-2}},
        {"batch_size": 16},
    ),
    "fedavgm-0.1-0.9": (
        {"strategy": "fedavgm"}
        | {"strategy_params": {"server_learning_rate": 0.1, "server_momentum": 0.9}},
        {"batch_size": 16},
    ),
}


def _partition(spec: str) -> tuple[str, dict[str, Any]]:
    """`iid` or `dirichlet:ALPHA` → (label, fed.yaml options)."""
    if spec == "iid":
        return "iid", {"partition": "iid"}
    kind, _, alpha = spec.partition(":")
    if kind != "dirichlet" or not alpha:
        raise SystemExit(f"--partitions: {spec!r} is not iid or dirichlet:ALPHA")
    return f"dirichlet α={float(alpha):g}", {"partition": "dirichlet", "alpha": float(alpha)}


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
    params: dict[str, Any], federated: dict[str, Any], workdir: Path, X_test: Any | None
) -> dict[str, Any]:
    from fds.estimator import FDS
    from fds.federated.settings import make_settings
    from fds.workflows.federated import simulate_params

    summary = simulate_params(params, make_settings(**federated), workdir / "run", verbose=False)
    rounds = [json.loads(x) for x in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    return {
        "elbo": None if X_test is None else FDS.load(workdir / "run").score(X_test),
        # the sites' validation ELBO of the global model per round: whether the last round is
        # the best (pooled training keeps its best epoch; see docs/federated.md)
        "val_elbo_per_round": [r.get("val_elbo") for r in rounds],
        # rounds in which a site failed (e.g. a Ray worker killed when the machine ran low on
        # memory) or was rejected: the run is then not the setting's figure
        "incomplete_rounds": sum(1 for r in rounds if r["failed"] or r["rejected"]),
        "seconds_per_round": summary["seconds_per_round"],
        "bytes_down": summary["bytes_down_per_site_per_round"],
        "bytes_up": summary["bytes_up_per_site_per_round"],
        "seconds": summary["seconds"],
    }


class PeakMemory:
    """Peak resident memory of this process plus all its descendants (Ray's workers and
    daemons), sampled on a thread."""

    def __init__(self, every: float = 0.2) -> None:
        import psutil

        self.process, self.every, self.peak = psutil.Process(), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for proc in [self.process, *self.process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just ended
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _scale(params: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from fds.federated.settings import make_settings
    from fds.federated.strategies import sampled_sites

    federated = {
        "sites": args.scale_sites,
        "rounds": args.scale_rounds,
        "fraction": args.scale_fraction,
        "fraction_evaluate": args.scale_fraction,
        "min_sites": max(2, int(args.scale_sites * args.scale_fraction)),
        "seed": args.seeds[0],
        "timeout": 3600,
    }
    with PeakMemory() as memory:
        result = _federated(params, federated, workdir, None)
    asked = sampled_sites(make_settings(**federated), args.scale_sites)
    return {
        "sites": args.scale_sites,
        "sampled_per_round": asked,
        "rounds": args.scale_rounds,
        "seconds_per_round": result["seconds_per_round"],
        "bytes_per_round": asked * (result["bytes_down"] + result["bytes_up"]),
        "peak_rss_bytes": memory.peak,
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


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--data", default="auto", choices=("auto", "digits", "fashion-mnist"))
    parser.add_argument("--setups", default="fedavg,recommended", help=f"of {', '.join(SETUPS)}")
    parser.add_argument("--partitions", default="iid,dirichlet:0.5,dirichlet:0.1")
    parser.add_argument(
        "--compression",
        default="float16,topk:0.1",
        help="specs run with the recommended setup on the first partition ('' for none)",
    )
    parser.add_argument("--scale-sites", type=int, default=100, help="0 skips the scale run")
    parser.add_argument("--scale-fraction", type=float, default=0.1)
    parser.add_argument("--scale-rounds", type=int, default=3)
    parser.add_argument("--deployment", action="store_true")
    parser.add_argument(
        "--deployment-rounds", type=int, default=2, help="rounds of the loopback deployment run"
    )
    parser.add_argument(
        "--seeds", default="0,1,2", help="seeds of the data split, model and sites; medians"
    )
    parser.add_argument(
        "--centralized-elbo",
        default=None,
        help="skip the centralized runs and use these held-out ELBOs, one per seed, comma-"
        "separated (from an earlier run with the same --data and --rounds: single-threaded "
        "training is deterministic), so that parts of the table can run as separate jobs",
    )
    parser.add_argument(
        "--warm-share",
        type=float,
        default=0.0,
        help="share of the training rows set aside as public for a warm start (0: none)",
    )
    parser.add_argument(
        "--warm-epochs", type=int, default=3, help="epochs of the warm model on the public rows"
    )
    parser.add_argument(
        "--warm-centralized-elbo",
        default=None,
        help="baseline (b) of the warm start, one per seed, comma-separated: reuse these held-out "
        "ELBOs (same --warm-share, --warm-epochs, --rounds) or 'skip' to leave it out",
    )
    args = parser.parse_args()
    args.setups = [s for s in args.setups.split(",") if s]
    if unknown := [s for s in args.setups if s not in SETUPS]:
        parser.error(f"unknown setup(s) {unknown}; known: {', '.join(SETUPS)}")
    args.partitions = [_partition(p) for p in args.partitions.split(",") if p]
    args.compression = [c for c in args.compression.split(",") if c]
    args.seeds = [int(x) for x in args.seeds.split(",") if x]
    if not args.seeds:
        parser.error("--seeds: give at least one seed")
    if args.centralized_elbo is not None:
        args.centralized_elbo = [float(x) for x in args.centralized_elbo.split(",")]
        if len(args.centralized_elbo) != len(args.seeds):
            parser.error("--centralized-elbo: give one value per seed of --seeds")
    if not 0 <= args.warm_share < 1:
        parser.error("--warm-share must be in [0, 1)")
    warm_elbo = args.warm_centralized_elbo
    if warm_elbo is not None:
        skip = warm_elbo == "skip"
        args.warm_centralized_elbo = [None if skip else float(x) for x in warm_elbo.split(",")]
        if skip:
            args.warm_centralized_elbo *= len(args.seeds)
        if len(args.warm_centralized_elbo) != len(args.seeds):
            parser.error("--warm-centralized-elbo: give one value per seed of --seeds, or skip")
    return args


def main() -> None:
    args = _parse()
    data = _data_name(args.data)
    X_test = _test_split(data)
    runs = [
        (label, part, setup, "none") for label, part in args.partitions for setup in args.setups
    ]
    if args.partitions:
        label, part = args.partitions[0]
        runs += [(label, part, "recommended", how) for how in args.compression]
    centrals, per_seed = [], []
    with tempfile.TemporaryDirectory(prefix="fds-fed-bench-") as tmp:
        for s, seed in enumerate(args.seeds):
            params = MODEL_SPEC | {
                "data": data,
                "seed": seed,
                "batch_size": 128,
                "val_fraction": 0.1,
            }
            if args.centralized_elbo is None:
                central = _centralized(params, args.rounds, X_test)
            else:
                central = {"elbo": args.centralized_elbo[s], "seconds": None, "reused": True}
            warm = _warm_start(args, s, data, params, Path(tmp) / f"warm-{seed}", X_test)
            if warm is not None:
                params = params | {"data_root": warm["data_root"]}
                keep = ("warm_elbo", "warm_seconds", "public_rows", "pooled_from_warm")
                central = central | {k: warm[k] for k in keep}
            centrals.append(central | {"seed": seed})
            print(f"seed {seed}: centralized held-out ELBO {central['elbo']:.2f}", flush=True)
            base = {
                "sites": args.sites,
                "rounds": args.rounds,
                "local_epochs": 1,
                "min_sites": args.sites,
                "seed": seed,
            }
            for i, (label, part, setup, how) in enumerate(runs):
                federated, model = SETUPS[setup]
                federated = base | federated | part | {"compression": how}
                if warm is not None:
                    federated["init_model"] = warm["model"]
                # the same data budget: 1/k of an epoch per round → k times the rounds
                federated["rounds"] = round(args.rounds / federated["local_epochs"])
                workdir = Path(tmp) / f"{seed}-{i}"
                result = _federated(params | model, federated, workdir, X_test)
                gap = _gap(central["elbo"], result["elbo"])
                like = (central.get("pooled_from_warm") or {}).get("elbo")
                per_seed.append(
                    {"seed": seed, "partition": label, "setup": setup, "compression": how}
                    | {"gap_percent": gap}
                    | (
                        {}
                        if warm is None
                        else {"gap_vs_pooled_from_warm_percent": _gap(like, result["elbo"])}
                    )
                    | result
                )
                bad = result["incomplete_rounds"]
                warning = f" (NOT VALID: {bad} round(s) with failed sites)" if bad else ""
                against_b = per_seed[-1].get("gap_vs_pooled_from_warm_percent")
                like_for_like = "" if against_b is None else f", (b) {against_b:.2f} %"
                print(
                    f"seed {seed}, {label}, {setup}, compression {how}: gap {gap:.2f} %"
                    f"{like_for_like}{warning}",
                    flush=True,
                )
        params = MODEL_SPEC | {"data": data, "seed": args.seeds[0], "batch_size": 128}
        params |= {"val_fraction": 0.1}
        scale = _scale(params, args, Path(tmp) / "scale") if args.scale_sites else None
        deployment = None
        if args.deployment:
            federated = {"sites": args.sites, "rounds": args.deployment_rounds, "timeout": 3600}
            federated |= {"local_epochs": 1, "min_sites": args.sites, "seed": args.seeds[0]}
            deployment = _deployment(params, federated, Path(tmp) / "deployment")
    _report(args, data, centrals, _medians(per_seed), per_seed, scale, deployment)


def _gap(reference: float | None, elbo: float) -> float | None:
    """How far `elbo` falls below `reference`, in % of |reference| (None: no reference)."""
    return None if reference is None else 100 * (reference - elbo) / abs(reference)


def _warm_start(
    args: argparse.Namespace,
    s: int,
    data: str,
    params: dict[str, Any],
    workdir: Path,
    X_test: Any,
) -> dict[str, Any] | None:
    """For `--warm-share`: the private rows' folder, the warm model and baseline (b)."""
    if not args.warm_share:
        return None
    from fds.data.files import read_data

    X = np.asarray(read_data(data).X)
    public, private = split_public(len(X), args.warm_share, params["seed"])
    model_params = {k: v for k, v in params.items() if k != "data"}
    model, seconds = train_warm(model_params, X[public], args.warm_epochs, workdir / "model")
    from fds.estimator import FDS

    warm_elbo = FDS.load(model).score(X_test)
    print(
        f"seed {params['seed']}: warm model ({len(public)} public rows, {args.warm_epochs} "
        f"epochs) held-out ELBO {warm_elbo:.2f}",
        flush=True,
    )
    if args.warm_centralized_elbo is not None:
        elbo = args.warm_centralized_elbo[s]
        pooled = None if elbo is None else {"elbo": elbo, "seconds": None, "reused": True}
    else:
        pooled = pooled_from_warm(model_params, model, X[private], args.rounds, X_test)
    if pooled is not None:
        print(f"seed {params['seed']}: (b) pooled from warm {pooled['elbo']:.2f}", flush=True)
    return {
        "data_root": str(write_private(data, private, workdir / "private")),
        "model": str(model),
        "warm_elbo": warm_elbo,
        "warm_seconds": seconds,
        "public_rows": len(public),
        "pooled_from_warm": pooled,
    }


def _medians(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (partition, setup, compression): the median over seeds of the ELBO, the gap
    and the seconds per round (bytes do not depend on the seed), with the seeds' gaps listed."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in per_seed:
        groups.setdefault((r["partition"], r["setup"], r["compression"]), []).append(r)
    rows = []
    for (partition, setup, how), runs in groups.items():
        rows.append(
            {"partition": partition, "setup": setup, "compression": how}
            | {k: median([r[k] for r in runs]) for k in ("elbo", "gap_percent")}
            | _median_vs_warm(runs)
            | {"seconds_per_round": median([r["seconds_per_round"] for r in runs])}
            | {"bytes_down": runs[0]["bytes_down"], "bytes_up": runs[0]["bytes_up"]}
            | {"gaps_per_seed": [r["gap_percent"] for r in runs]}
            | {"incomplete_rounds": sum(r["incomplete_rounds"] for r in runs)}
        )
    return rows


def _median_vs_warm(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The gap to baseline (b), pooled from the warm model: median and per seed, if measured."""
    gaps = [r.get("gap_vs_pooled_from_warm_percent") for r in runs]
    if any(g is None for g in gaps):
        return {}
    return {"gap_vs_pooled_from_warm_percent": median(gaps), "gaps_vs_pooled_from_warm": gaps}


def _gap_table(results: list[dict[str, Any]]) -> None:
    print_table(
        [
            "partition",
            "setup",
            "compression",
            "held-out ELBO (median)",
            "gap % to (a) pooled from scratch (median)",
            "gaps % per seed",
            "gap % to (b) pooled from warm (median)",
            "gaps % per seed (b)",
            "bytes down/site/round",
            "bytes up/site/round",
            "s/round (simulation)",
            "rounds with failed sites (must be 0)",
        ],
        [
            [
                r["partition"],
                r["setup"],
                r["compression"],
                r["elbo"],
                r["gap_percent"],
                " / ".join(f"{g:.2f}" for g in r["gaps_per_seed"]),
                r.get("gap_vs_pooled_from_warm_percent"),
                " / ".join(f"{g:.2f}" for g in r.get("gaps_vs_pooled_from_warm", [])),
                r["bytes_down"],
                r["bytes_up"],
                r["seconds_per_round"],
                r["incomplete_rounds"],
            ]
            for r in results
        ],
    )


def _report(
    args: argparse.Namespace,
    data: str,
    centrals: list[dict[str, Any]],
    results: list[dict[str, Any]],
    per_seed: list[dict[str, Any]],
    scale: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
) -> None:
    elbos = ", ".join(f"{c['elbo']:.2f} (seed {c['seed']})" for c in centrals)
    print(
        f"data: {data}, {args.sites} sites, {args.rounds} epochs of data per site; centralized "
        f"{args.rounds} epochs at batch 128: held-out ELBO {elbos} nats"
    )
    if args.warm_share:
        for c in centrals:
            pooled = c["pooled_from_warm"]
            print(
                f"warm start (seed {c['seed']}): {c['public_rows']} public rows ({args.warm_share:g}), "
                f"{args.warm_epochs} epochs: held-out ELBO {c['warm_elbo']:.2f}; (b) pooled from it on "
                f"the other rows, {args.rounds} epochs: "
                + ("not measured" if pooled is None else f"{pooled['elbo']:.2f}")
            )
    for name in args.setups:
        federated, model = SETUPS[name]
        print(f"setup {name}: federated {federated}, sites' model options {model}")
    if results:
        _gap_table(results)
    if scale is not None:
        print(
            f"{scale['sites']} simulated sites, {scale['sampled_per_round']} per round, "
            f"{scale['rounds']} rounds: {scale['seconds_per_round']:.2f} s/round, "
            f"{scale['bytes_per_round']:,} bytes/round, peak RSS "
            f"{scale['peak_rss_bytes'] / 2**20:,.0f} MiB (this process + Ray workers)"
        )
    if deployment is not None:
        print(f"loopback deployment (iid, fedavg): {deployment['seconds_per_round']:.2f} s/round")
    emit_json(
        {
            "benchmark": "federated",
            "data": data,
            "sites": args.sites,
            "rounds": args.rounds,
            "setups": {k: {"federated": SETUPS[k][0], "model": SETUPS[k][1]} for k in args.setups},
            "seeds": args.seeds,
            "warm_start": (
                {"share": args.warm_share, "epochs": args.warm_epochs} if args.warm_share else None
            ),
            "centralized": centrals,
            "scenarios": results,
            "scenarios_per_seed": per_seed,
            "scale": scale,
            "deployment": deployment,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
