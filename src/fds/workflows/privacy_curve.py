"""`fds privacy-curve`: utility and attacker success over ε, for DP training and for DP release.

An experiment to *choose* ε: it re-trains the run's configuration with DP-SGD at each ε
(``training``) and releases the run's own latents with `release_latents` at each ε (``release``).
It reads the real data to do so, so its outputs (the curve, the models it trains) carry no DP
guarantee, and nothing is charged to the run's privacy ledger. Run it on public or synthetic data
that looks like the private data when the choice itself must not leak.

Each point: utility = best accuracy of the attribute attackers' classifiers (logistic regression,
gradient boosting, MLP: `attribute_leakage`) predicting the target, fitted on the latents of training
rows and scored on held-out rows; attacker success = the same on the sensitive attribute, beside
its majority baseline; for DP training also the membership AUC of the ELBO (loss) attack.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from threadpoolctl import threadpool_limits

from fds.data.files import LoadedData
from fds.data.sensitive import is_categorical
from fds.data.stream import split_indices, take_rows
from fds.errors import ConfigError, DataError, FDSError
from fds.estimator import FDS
from fds.privacy.leakage import attribute_leakage
from fds.privacy.release import release_latents
from fds.rundir import PRIVACY_CURVE_FILE, write_json
from fds.training.accounting import default_delta
from fds.workflows.attack import membership
from fds.workflows.evaluate import load_run
from fds.workflows.leakage import quartiles, sensitive_values
from fds.workflows.probe import resolve_values

__all__ = ["DEFAULT_EPSILONS", "NOTE", "curve_path", "parse_epsilons", "run_curve"]

DEFAULT_EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, math.inf)
MODES = ("training", "release", "both")
UTILITY = "best accuracy of logistic regression, boosting, MLP and forest (attribute_leakage)"
NOTE = (
    "The curve is an experiment to choose ε: it uses the data itself, so its outputs are not DP "
    "and nothing is charged to the run's privacy ledger. Prefer public or synthetic look-alike data."
)
_MIN_HELD_OUT = 20


def parse_epsilons(text: str) -> tuple[float, ...]:
    """'0.5,1,inf' → (0.5, 1.0, inf); every ε must be a positive number or inf/∞."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        raw = "inf" if part in ("∞", "inf", "infinity") else part
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(
                f"--epsilons: {part!r} is not a number (e.g. 0.5,1,2,4,8,inf)"
            ) from None
        if not value > 0 or math.isnan(value):
            raise ConfigError(f"--epsilons: ε must be positive, got {part!r}")
        values.append(value)
    return tuple(sorted(set(values)))


def _labels(data: LoadedData, name: str, what: str) -> np.ndarray:
    values = np.asarray(resolve_values(data, name, what))
    return values if is_categorical(pd.Series(values)) else quartiles(values)


def _measure(
    Z_fit: np.ndarray, Z_test: np.ndarray, labels: dict[str, np.ndarray], rows: dict, seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in labels.items():
        leak = attribute_leakage(
            Z_fit, values[rows["fit"]], Z_test, values[rows["test"]], seed=seed
        )
        out[key] = leak["best_accuracy"]
        out[f"{key}_majority"] = leak["majority"]
        out[f"{key}_by"] = leak["best_attacker"]
    return out


def _part(model: FDS) -> str:
    return "public" if model.model_.private_dim else "all"


def _release_point(
    model: FDS, X: Any, eps: float, labels: dict, rows: dict, seed: int
) -> dict[str, Any]:
    part = _part(model)
    Z_fit = model.transform(take_rows(X, rows["fit"]), part=part)
    Z_test = model.transform(take_rows(X, rows["test"]), part=part)
    clip = math.sqrt(Z_fit.shape[1])
    delta = default_delta(len(X))
    if not math.isinf(eps):
        Z_fit, _ = release_latents(Z_fit, eps, delta, clip, seed=seed)
        Z_test, _ = release_latents(Z_test, eps, delta, clip, seed=seed + 1)
    point = {"mechanism": "release", "epsilon": eps, "spent_epsilon": eps}
    point["delta"] = None if math.isinf(eps) else delta
    point |= {"clip": clip, "latents": part}
    return point | _measure(Z_fit, Z_test, labels, rows, seed)


def _dp_params(model: FDS, eps: float, epochs: int | None) -> tuple[dict[str, Any], list[str]]:
    """The run's configuration with DP-SGD at ε (none at ∞), adapted to what DP-SGD can train:
    batch-coupled free bits and block independence dropped, an alternating adversary (its own optimizer, outside DP-SGD)
    replaced by gradient reversal; anything else DP refuses is refused with the point's ε."""
    params = model.config_.model_dump()
    notes = []
    params["privacy"] = None if math.isinf(eps) else {"epsilon": eps}
    if params["privacy"] and params.get("free_bits"):
        notes.append(f"free_bits {params['free_bits']} dropped under DP (batch-coupled)")
        params["free_bits"] = 0.0
    if params["privacy"] and params.get("independence"):
        notes.append(f"independence {params['independence']} dropped under DP (batch-coupled)")
        params["independence"] = 0.0
    if params["privacy"] and params.get("censor") and params.get("adversary") == "alternating":
        notes.append("adversary alternating → gradient_reversal under DP (one DP-SGD optimizer)")
        params["adversary"] = "gradient_reversal"
    if epochs is not None:
        params["epochs"] = epochs
    return params, notes


def _training_point(
    model: FDS,
    data: LoadedData,
    eps: float,
    labels: dict,
    rows: dict,
    seed: int,
    epochs: int | None,
) -> dict[str, Any]:
    params, notes = _dp_params(model, eps, epochs)
    try:
        trained = FDS(**params, verbose=False).fit(
            data.X, sensitive=sensitive_values(data, model.config_.sensitive)
        )
    except FDSError as exc:
        raise type(exc)(f"DP training at ε={eps:g} refused for this configuration: {exc}") from None
    part = _part(trained)
    Z_fit = trained.transform(take_rows(data.X, rows["fit"]), part=part)
    Z_test = trained.transform(take_rows(data.X, rows["test"]), part=part)
    spent = trained.privacy_ or {}
    n = min(len(rows["fit"]), len(rows["test"]))
    member = membership(
        trained, take_rows(data.X, rows["fit"][:n]), take_rows(data.X, rows["test"][:n]), seed=seed
    )
    point = {
        "mechanism": "dp-sgd",
        "epsilon": eps,
        "spent_epsilon": spent.get("epsilon", math.inf),
        "delta": spent.get("delta"),
        "epochs": params["epochs"],
        "latents": part,
        "membership_auc": member["loss"]["auc"],
        "notes": notes,
    }
    return point | _measure(Z_fit, Z_test, labels, rows, seed)


def run_curve(
    model: FDS,
    data: LoadedData,
    target: str,
    *,
    sensitive: str | None = None,
    epsilons: tuple[float, ...] = DEFAULT_EPSILONS,
    mode: str = "both",
    n_rows: int = 1000,
    epochs: int | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> dict[str, Any]:
    """The curve for a fitted `model` and the `data` it was trained on (see the module docstring).

    Fit rows are up to `n_rows` of the run's training rows and test rows up to `n_rows` of its
    held-out rows (the run's own split), so membership is measured on the rows DP-SGD trained on.
    `epochs` overrides the run's epochs for the DP re-trainings (None: the run's)."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not epsilons:
        raise ConfigError("--epsilons: give at least one ε")
    if n_rows < _MIN_HELD_OUT // 2:
        raise DataError(f"--n-rows must be at least {_MIN_HELD_OUT // 2}, got {n_rows}")
    sensitive = sensitive or next((c.name for c in model.sensitive_), None)
    labels = {"utility": _labels(data, target, "target")}
    if sensitive:
        labels["attacker"] = _labels(data, sensitive, "sensitive attribute")
    config = model.config_
    train_idx, val_idx = split_indices(len(data.X), config.val_fraction, config.seed)
    if len(val_idx) < _MIN_HELD_OUT:
        raise DataError(
            f"the run held out {len(val_idx)} rows (val_fraction {config.val_fraction}): the "
            f"curve scores on at least {_MIN_HELD_OUT} held-out rows; train with a validation split"
        )
    rng = np.random.default_rng(seed)
    rows = {
        "fit": np.sort(rng.choice(train_idx, min(n_rows, len(train_idx)), replace=False)),
        "test": np.sort(rng.choice(val_idx, min(n_rows, len(val_idx)), replace=False)),
    }
    jobs = [(m, eps) for m in ("training", "release") if mode in (m, "both") for eps in epsilons]
    points = []
    started = time.perf_counter()
    with (
        threadpool_limits(limits=1, user_api="blas"),
        Progress(console=Console(stderr=True), transient=True, disable=not show_progress) as bar,
    ):
        task = bar.add_task("privacy curve", total=len(jobs))
        for kind, eps in jobs:
            bar.update(task, description=f"{kind} ε={eps:g}")
            t0 = time.perf_counter()
            if kind == "release":
                point = _release_point(model, data.X, eps, labels, rows, seed)
            else:
                point = _training_point(model, data, eps, labels, rows, seed, epochs)
            points.append(point | {"seconds": round(time.perf_counter() - t0, 2)})
            bar.advance(task)
    return {
        "data": data.source,
        "preset": config.preset,
        "mode": mode,
        "target": target,
        "sensitive": sensitive,
        "utility_measure": UTILITY,
        "n_fit": len(rows["fit"]),
        "n_test": len(rows["test"]),
        "seed": seed,
        "note": NOTE,
        "seconds": round(time.perf_counter() - started, 2),
        "points": [_strict_point(p) for p in points],
    }


def _strict_point(point: dict[str, Any]) -> dict[str, Any]:
    """∞ as the string "inf" so the JSON stays strict."""
    return {k: "inf" if isinstance(v, float) and math.isinf(v) else v for k, v in point.items()}


def curve_path(
    model_path: str | Path,
    data: str | None,
    target: str,
    *,
    data_root: str | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], Path]:
    """Load a run, compute the curve, and write RUN/privacy_curve.json atomically."""
    model, run_dir, loaded = load_run(model_path, data, data_root)
    result = run_curve(model, loaded, target, **kwargs)
    return result, write_json(run_dir / PRIVACY_CURVE_FILE, result)


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per point for the CLI table and the report."""

    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    return [
        [
            p["mechanism"],
            "∞" if p["epsilon"] == "inf" else f"{p['epsilon']:g}",
            "∞" if p["spent_epsilon"] == "inf" else fmt(p["spent_epsilon"]),
            f"{fmt(p['utility'])} (maj. {fmt(p['utility_majority'])})",
            f"{fmt(p['attacker'])} (maj. {fmt(p['attacker_majority'])})"
            if "attacker" in p
            else "–",
            fmt(p.get("membership_auc")),
        ]
        for p in result["points"]
    ]


HEADERS = ["mechanism", "ε", "spent ε", "utility", "attacker", "membership AUC"]
