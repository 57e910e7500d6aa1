"""`fds evaluate`: every figure that judges a trained model, computed on the rows it did not train on,
written to RUN/evaluation.json (strict JSON, stable snake_case keys) and summarised in a few numbers.

Layout of evaluation.json (a group is null when it does not apply; `notes` says why):

    run              data, preset, latent_dim, stochastic, held_out ("validation" | "all rows"), n_held_out
    reconstruction   mse, n_examples; tables: columns.{name}.{kind, rmse, mae, rmse_over_std | accuracy};
                     images: pixel_mse, psnr
    likelihood       elbo, iwae, iwae_k, kl, reconstruction_log_likelihood, nll_posterior_mean,
                     nll_per_block, n_examples  (nats per example, in the model's encoded units)
    latent_health    latent_dim, active_units, active_dims, active_threshold, activity, kl_per_dim,
                     kl_total, information_per_dim, information_threshold, means_collapsed,
                     means_collapsed_dims, posterior_collapse, warnings
    independence     tc_gaussian, tc_minibatch, mean_pairwise_mi, max_pairwise_mi,
                     mean_pairwise_mi_shuffled, pairwise_mi, n_bins
    sparsity         near_zero_fraction, near_zero_fraction_per_dim, hoyer, threshold, relative
    disentanglement  mig, dci_disentanglement, dci_completeness, dci_informativeness, sap,
                     factor_vae_score, factor_vae_active_dims, n_rows, factors
    leakage          (models with a private block) attributes.{name}.{public, private}.{attackers,
                     best_attacker, best_accuracy, best_auc, majority, advantage, learning_curve,
                     lower_bound, …} and, with --utility-target, attributes.{name}.{necessary,
                     necessary_accuracy, necessary_auc} and utility.{target, utility_metric,
                     utility, …}; n_train, n_test, split, budget, notes; null otherwise (see
                     fds.workflows.leakage)
    key              (models with a private block) attributes.{name}.{keyed_fidelity,
                     public_only_attribute_accuracy, majority, swap_success, swap_keeps, …},
                     n_rows; null otherwise (see fds.workflows.key_quality)
    synthetic        kind ("table" | "images"); tables: quality.{quality_score, column_shapes,
                     column_pair_trends (all pairs), n_pairs, sdmetrics_quality_score,
                     sdmetrics_column_pair_trends_thresholded, n_pairs_thresholded,
                     column_shape_scores, worst_pairs} (vs held-out rows), tstr.{…} | null,
                     fidelity.{out_of_support, missing, categories, precision} (vs training
                     rows; see fds.evaluation.fidelity), dcr.{share, spread, shares, n_subsets,
                     exact_copy_rate, holdout_exact_copy_rate, …} (see fds.evaluation.dcr);
                     images: precision, recall, density, coverage, classifier_accuracy, …
    multimodal       (fusion models; every other group but leakage is then null) n_records,
                     labels, reconstruction.{modality}.{mse | exact_match, token_accuracy},
                     cross_coherence [{from, to, label, accuracy}], joint_coherence.{label},
                     probes [{from, label, accuracy}]  (fds.workflows.multimodal); with a key,
                     leakage's blocks are public_from.{all, each modality} and private
    seconds          one entry per group (its own work: the groups that fit models run side by
                     side, so they can add up to more than the total) and total
    notes            sentences on what was skipped or approximated
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from threadpoolctl import threadpool_limits

from fds.data.codec import input_kind_of
from fds.data.files import LoadedData, read_data
from fds.data.image_codec import ImageCodec
from fds.data.stream import split_indices, take_rows
from fds.errors import ConfigError, DataError
from fds.estimator import FDS
from fds.evaluation.dcr import dcr_share
from fds.evaluation.disentanglement import evaluate_disentanglement
from fds.evaluation.fidelity import table_fidelity
from fds.evaluation.metrics import (
    elbo_and_iwae,
    independence,
    latent_health,
    reconstruction_errors,
    sparsity,
)
from fds.evaluation.synthetic import image_sample_quality, table_quality, tstr
from fds.io import resolve_model_dir
from fds.privacy.leakage import FAST, TRUTHFUL
from fds.rundir import CONFIG_FILE, EVALUATION_FILE, plain_json, write_json
from fds.runtime.concurrent import Plan, run_plans
from fds.runtime.threads import choose_threads, choose_workers, threads_in_use
from fds.workflows.key_quality import key_headline, key_quality
from fds.workflows.leakage import measure_leakage, plan_leakage

__all__ = ["evaluate_path", "evaluate_run", "headline", "synthetic_table_headline"]

GROUPS = (
    "reconstruction",
    "likelihood",
    "latent_health",
    "independence",
    "sparsity",
    "disentanglement",
    "synthetic",
    "leakage",
    "key",
)
_BATCH = 512
# Row budgets (default, fast): held-out rows scored, rows for the disentanglement metrics
# (disentanglement_lib's fast budget: 2 000 train + 1 000 test), real images for the feature
# classifier, synthetic rows or images drawn.
_HELD_OUT = (5000, 500)
_DISENTANGLEMENT_ROWS = (3000, 1500)
_REAL_IMAGES = (5000, 1500)
_SYNTHETIC = (5000, 1000)
_FAST_IWAE_K = 10
_SPENT = threading.Lock()  # the groups' seconds, added to from the fits' threads


@threadpool_limits.wrap(limits=1, user_api="blas")  # small matrices: BLAS threads only contend
def evaluate_run(
    model: FDS,
    data: LoadedData,
    *,
    out: Path | None = None,
    iwae_k: int = 100,
    fast: bool = False,
    seed: int = 0,
    target: str | None = None,
    factors: pd.DataFrame | None = None,
    utility_target: str | None = None,
    workers: int = 1,
    real_images: int | None = None,
) -> dict[str, Any]:
    """Evaluate a fitted `model` on `data` (the data it was trained on) and return the report.

    Held-out rows are the validation split training used (all rows when it was empty). `target`
    names the table column TSTR predicts (default: the column holding `data.labels`, if any);
    `factors` (one integer column per ground-truth factor, a row per sample) overrides
    `data.factors`. `fast` scores at most 500 held-out rows with k ≤ 10 importance samples and
    smaller sample budgets, and cheap leakage attackers. With `out`, the report is also written
    to out/evaluation.json. For a model with a private block, `leakage` measures its sensitive
    attributes on each block (`fds.workflows.leakage.measure_leakage`, as `fds attack --kind
    attribute` does), and with `utility_target` (a column, `label` or `factor:NAME`) the public
    block's utility for it and the leakage that target alone implies; `workers` of its fits run
    side by side. `real_images` caps the real images the sample quality of an image model is
    judged against (default 5,000, `fast` 1,500): its feature classifier trains on 4/5 of them,
    the evaluation's longest fit.
    """
    started = time.perf_counter()
    if model.input_kind_ == "multimodal":
        return _multimodal_report(model, data, out, fast, seed, started, utility_target, workers)
    X = data.X
    if input_kind_of(X) != model.input_kind_:
        raise DataError(f"the model was fitted on {model.input_kind_}, got {input_kind_of(X)}")
    if iwae_k < 1:
        raise DataError(f"--iwae-k must be at least 1, got {iwae_k}")
    if real_images is not None and real_images < 1:
        raise DataError(f"real_images must be at least 1, got {real_images}")
    factors = data.factors if factors is None else factors
    if factors is not None and len(factors) != len(X):
        raise DataError(f"the factors table has {len(factors)} rows but the data has {len(X)}")
    budget = 1 if fast else 0
    k = min(iwae_k, _FAST_IWAE_K) if fast else iwae_k
    rng = np.random.default_rng(seed)
    config = model.config_
    train_idx, val_idx = split_indices(len(X), config.val_fraction, config.seed)
    held = val_idx if len(val_idx) else np.arange(len(X))
    notes: list[str] = []
    if not len(val_idx):
        notes.append("training used no validation split: every figure is on training rows")
    held = _at_most(held, _HELD_OUT[budget], rng)
    seconds: dict[str, float] = {}
    report: dict[str, Any] = {
        "run": {
            "data": data.source,
            "preset": config.preset,
            "latent_dim": config.latent_dim,
            "stochastic": bool(model.model_.stochastic),
            "held_out": "validation" if len(val_idx) else "all rows",
            "n_held_out": len(held),
            "fast": fast,
            "seed": seed,
        }
    }

    tick = time.perf_counter()
    x_enc, mean, logvar, x_hat = _posterior(model, X, held)
    report["reconstruction"] = reconstruction_errors(model.codec_, x_enc, x_hat)
    seconds["reconstruction"] = time.perf_counter() - tick

    tick = time.perf_counter()
    batches = [torch.from_numpy(x_enc[i : i + _BATCH]) for i in range(0, len(x_enc), _BATCH)]
    report["likelihood"] = elbo_and_iwae(model.model_, batches, k=k, seed=seed)
    if not model.model_.stochastic:
        notes.append("deterministic codes have no posterior density: no ELBO or IWAE")
    seconds["likelihood"] = time.perf_counter() - tick

    tick = time.perf_counter()
    report["latent_health"] = latent_health(mean, logvar)
    seconds["latent_health"] = time.perf_counter() - tick

    tick = time.perf_counter()
    report["independence"] = independence(mean, logvar, seed=seed)
    seconds["independence"] = time.perf_counter() - tick

    tick = time.perf_counter()
    if not model.model_.stochastic or config.sparsity_l1 or config.sparsity_kl:
        report["sparsity"] = sparsity(mean)
    else:
        report["sparsity"] = None
        notes.append("sparsity: skipped for Gaussian codes trained without a sparsity term")
    seconds["sparsity"] = time.perf_counter() - tick

    # The groups that fit models (the disentanglement metrics' classifiers, the sample-quality
    # features, the attackers, the key's classifier) run side by side on `workers` cores. What
    # they take from the model and from `rng` is drawn here first, in a fixed order, and every
    # fit is seeded on its own: the figures do not depend on `workers`.
    plans: dict[tuple[str, ...], Plan[Any]] = {}
    group_notes: dict[str, list[str]] = {"disentanglement": [], "synthetic": []}
    tick = time.perf_counter()
    plans["disentanglement",] = _disentanglement(model, X, factors, budget, seed, rng)
    if factors is None:
        group_notes["disentanglement"].append(
            "disentanglement: no ground-truth factors for this data"
        )
    seconds["disentanglement"] = time.perf_counter() - tick

    tick = time.perf_counter()
    if isinstance(model.codec_, ImageCodec):
        images = _REAL_IMAGES[budget] if real_images is None else real_images
        plans["synthetic",] = _image_quality(
            model, data, images, seed, rng, group_notes["synthetic"]
        )
    else:
        plans["synthetic",] = _table_quality(
            model, data, train_idx, held, target, budget, seed, rng, group_notes["synthetic"]
        )
    seconds["synthetic"] = time.perf_counter() - tick

    finish_leakage = None
    if model.model_.private_dim:
        tick = time.perf_counter()
        leakage_plans, finish_leakage = plan_leakage(
            model, data, target=utility_target, seed=seed, budget=FAST if fast else TRUTHFUL
        )
        seconds["leakage"] = time.perf_counter() - tick
        attacks = {("leakage", *k): v for k, v in leakage_plans.items()}
        first = next(iter(attacks))  # the shared block's: its fit on every row is the longest
        plans = {first: attacks.pop(first)} | plans | attacks
        plans["key",] = Plan.single(partial(key_quality, model, data, seed=seed, fast=fast))

    spent: dict[str, float] = {}
    done = run_plans({key: _timed(plan, key[0], spent) for key, plan in plans.items()}, workers)
    for group in ("disentanglement", "synthetic"):
        report[group] = done[group,]
        seconds[group] += spent.get(group, 0.0)
        notes += group_notes[group]
    report["leakage"] = report["key"] = None
    if finish_leakage is not None:
        found = {key[1:]: value for key, value in done.items() if key[0] == "leakage"}
        report["leakage"] = finish_leakage(found)
        report["key"] = done["key",]
        seconds["leakage"] += spent["leakage"]
        seconds["key"] = spent["key"]

    seconds["total"] = time.perf_counter() - started
    report["seconds"] = {key: round(value, 3) for key, value in seconds.items()}
    report["notes"] = notes
    report = plain_json(report)
    if out is not None:
        write_json(Path(out) / EVALUATION_FILE, report)
    return report


def _at_most(rows: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= size else np.sort(rng.choice(rows, size, replace=False))


def encoded_rows(model: FDS, X: Any) -> np.ndarray:
    """Rows as the model sees them (float32, encoded by the fitted codec, images flattened);
    images batch by batch."""
    if isinstance(model.codec_, ImageCodec):
        parts = [
            model.codec_.encode(np.asarray(X[i : i + _BATCH])) for i in range(0, len(X), _BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)
    if isinstance(X, np.ndarray) and X.shape[1] != model.n_features_in_:
        raise DataError(
            f"the data has {X.shape[1]} features, the model expects {model.n_features_in_}"
        )
    return model.codec_.encode(X).astype(np.float32, copy=False)


@torch.no_grad()
def _posterior(
    model: FDS, X: Any, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Encoded rows, posterior means and log-variances, and the decoder mean at the posterior mean."""
    x_enc = encoded_rows(model, take_rows(X, rows))
    net = model.model_.eval()
    means, logvars, recon = [], [], []
    for start in range(0, len(x_enc), _BATCH):
        x = torch.from_numpy(x_enc[start : start + _BATCH])
        post = net.encode(x)
        means.append(post.mean)
        if post.logvar is not None:
            logvars.append(post.logvar)
        recon.append(net.likelihood.mean(net.decode(post.mean)))
    logvar = torch.cat(logvars).numpy() if logvars else None
    return x_enc, torch.cat(means).numpy(), logvar, torch.cat(recon).numpy()


def _disentanglement(
    model: FDS,
    X: Any,
    factors: pd.DataFrame | None,
    budget: int,
    seed: int,
    rng: np.random.Generator,
) -> Plan[dict[str, Any] | None]:
    """The disentanglement metrics in fast mode on the codes of a seeded subsample of all rows
    (None without factors); the codes are encoded now, the metrics fitted by the plan.

    The metrics judge the map from factors to codes, not generalisation, so training rows count."""
    if factors is None:
        return Plan.single(lambda: None)
    rows = _at_most(np.arange(len(X)), _DISENTANGLEMENT_ROWS[budget], rng)
    _, codes, _, _ = _posterior(model, X, rows)
    chosen = factors.iloc[rows] if isinstance(factors, pd.DataFrame) else np.asarray(factors)[rows]
    names = [str(c) for c in factors.columns] if isinstance(factors, pd.DataFrame) else None

    def scores() -> dict[str, Any]:
        found: dict[str, Any] = dict(evaluate_disentanglement(chosen, codes, fast=True, seed=seed))
        found["n_rows"] = len(rows)
        if names is not None:
            found["factors"] = names
        return found

    return Plan.single(scores)


def _label_column(frame: pd.DataFrame, labels: np.ndarray | None) -> str | None:
    """The table column holding `labels` (census: high_income), so TSTR has a target."""
    if labels is None:
        return None
    for name in frame.columns:
        try:
            if np.array_equal(frame[name].to_numpy(), np.asarray(labels)):
                return str(name)
        except (TypeError, ValueError):
            continue
    return None


def _table_quality(
    model: FDS,
    data: LoadedData,
    train_idx: np.ndarray,
    held: np.ndarray,
    target: str | None,
    budget: int,
    seed: int,
    rng: np.random.Generator,
    notes: list[str],
) -> Plan[dict[str, Any]]:
    """Synthetic rows drawn now, judged against the real ones by the plan (which adds to
    `notes`)."""
    X = data.X
    real = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=model.codec_.feature_names)
    if target is not None and target not in real.columns:
        raise DataError(
            f"--target {target!r} is not a column of the data; columns: {', '.join(map(str, real.columns))}"
        )
    train_rows = _at_most(train_idx, _SYNTHETIC[budget], rng)
    synthetic = model.sample(len(train_rows), seed=seed)
    if isinstance(synthetic, np.ndarray):
        synthetic = pd.DataFrame(synthetic, columns=model.codec_.feature_names)
    real_held = real.iloc[held].reset_index(drop=True)
    real_fit = real.iloc[train_idx].reset_index(drop=True)  # what the model learned from
    target = target or _label_column(real, data.labels)

    def judged() -> dict[str, Any]:
        result: dict[str, Any] = {
            "kind": "table",
            "n_synthetic": len(synthetic),
            "quality": table_quality(real_held, synthetic),
            "tstr": None,
            "fidelity": table_fidelity(real_fit, synthetic),
            "dcr": None,
        }
        if len(train_idx) and not np.isin(held, train_idx).any():
            result["dcr"] = dcr_share(real_fit, real_held, synthetic, seed=seed)
        else:
            notes.append("dcr: no held-out rows to compare the training rows with")
        if target is None:
            notes.append("tstr: skipped; pass --target COLUMN to train on synthetic, test on real")
        else:
            real_train = real.iloc[train_rows].reset_index(drop=True)
            result["tstr"] = tstr(real_train, synthetic, real_held, target, seed=seed)
            if result["tstr"]["reason"]:
                notes.append(f"tstr: {result['tstr']['reason']}")
        return result

    return Plan.single(judged)


def _image_quality(
    model: FDS,
    data: LoadedData,
    real_images: int,
    seed: int,
    rng: np.random.Generator,
    notes: list[str],
) -> Plan[dict[str, Any]]:
    """Images sampled now, judged against up to `real_images` real ones by the plan (which adds
    to `notes`)."""
    rows = _at_most(np.arange(len(data.X)), real_images, rng)
    real = np.asarray(data.X[rows])
    labels = None if data.labels is None else np.asarray(data.labels)[rows]
    if labels is not None and len(np.unique(labels)) < 2:
        labels = None
    n_samples = max(50, round(0.2 * len(rows)))
    samples = model.sample(n_samples, seed=seed)

    def judged() -> dict[str, Any]:
        result = image_sample_quality(real, labels, samples, seed=seed)
        if result["labels_source"] == "kmeans":
            notes.append(
                "synthetic: no class labels, so the feature classifier learned k-means clusters "
                "of the real images; classifier_accuracy is its accuracy on those clusters"
            )
        return {"kind": "images", "n_synthetic": len(samples), **result}

    return Plan.single(judged)


def _timed(plan: Plan[Any], group: str, spent: dict[str, float]) -> Plan[Any]:
    """`plan` whose fits add the seconds they take to `spent[group]` (a fit runs on one
    thread, so beside other fits the groups' seconds add up to more than the wall time)."""

    def timed(fit: Any) -> Any:
        def call() -> Any:
            start = time.perf_counter()
            try:
                return fit()
            finally:
                with _SPENT:
                    spent[group] = spent.get(group, 0.0) + time.perf_counter() - start

        return call

    return Plan(tuple(timed(fit) for fit in plan.fits), plan.combine)


# --------------------------------------------------------------------------- files and summary


def evaluate_path(
    model_path: str | Path,
    data: str | None = None,
    *,
    data_root: str | None = None,
    factors_path: str | Path | None = None,
    iwae_k: int = 100,
    fast: bool = False,
    seed: int = 0,
    target: str | None = None,
    utility_target: str | None = None,
    threads: int | None = None,
    real_images: int | None = None,
) -> tuple[dict[str, Any], Path]:
    """Load a run (or model directory), read its data and write RUN/evaluation.json.

    The run directory is the parent of `model/`. Without `data`, the run's config.yaml names it.
    Built-in data sets are generated with the training seed, so the held-out rows are the same.
    `threads`: torch's and the OpenMP pools' threads (None: as `fds.runtime.threads` chooses,
    from the free cores; BLAS stays at 1 thread, see `evaluate_run`). `real_images`: as
    `evaluate_run`'s.
    """
    model, run_dir, loaded = load_run(model_path, data, data_root)
    factors = None
    if factors_path is not None:
        table = read_data(factors_path).X
        if not isinstance(table, pd.DataFrame):
            raise DataError(f"{factors_path}: factors must be a table (CSV or Parquet)")
        factors = table
    work = sum(p.numel() for p in model.model_.parameters()) * _BATCH
    with threads_in_use(choose_threads(threads, work=work)):
        report = evaluate_run(
            model,
            loaded,
            out=run_dir,
            iwae_k=iwae_k,
            fast=fast,
            seed=seed,
            target=target,
            factors=factors,
            utility_target=utility_target,
            workers=choose_workers(threads),  # one core per fit, not `work`'s threads
            real_images=real_images,
        )
    return report, run_dir / EVALUATION_FILE


def load_run(
    model_path: str | Path, data: str | None, data_root: str | None
) -> tuple[FDS, Path, LoadedData]:
    """(model, run directory, data) of a run; without `data`, the run's config.yaml names it.
    Built-in data sets are generated with the training seed, so the held-out rows are the same;
    a fusion model's table is split into its modalities."""
    model_dir = resolve_model_dir(model_path)
    run_dir = model_dir.parent
    model = FDS.load(model_dir)
    if data is None:
        saved = _run_data(run_dir)
        data, data_root = saved.get("data"), data_root or saved.get("data_root")
    if data is None:
        raise DataError(f"no data given and {run_dir / CONFIG_FILE} names none: pass --data")
    loaded = read_data(data, seed=model.config_.seed, root=data_root)
    if model.input_kind_ == "multimodal" and isinstance(loaded.X, pd.DataFrame):
        from fds.multimodal import as_modalities

        # a table of paths, text and values: split by the run's modalities (paths beside it)
        records, _ = as_modalities(loaded.X, model.config_, Path(data).parent)
        loaded = replace(loaded, X=dict(records))
    return model, run_dir, loaded


def _run_data(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        saved = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}
    return saved if isinstance(saved, dict) else {}


def _multimodal_report(
    model: FDS,
    data: LoadedData,
    out: Path | None,
    fast: bool,
    seed: int,
    started: float,
    utility_target: str | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """A fusion model's report: the `multimodal` group (fds.workflows.multimodal) and, with a
    key, `leakage` (its public block encoded from all modalities and from each one alone, and
    the key: `measure_leakage`, as `fds attack --kind attribute` does); the other groups of
    single-input models are null."""
    from fds.workflows.multimodal import evaluate_multimodal

    if not isinstance(data.X, dict):
        raise DataError(f"the model was fitted on multimodal data, got {input_kind_of(data.X)}")
    keyed = bool(model.model_.private_dim)
    if utility_target is not None and not keyed:
        raise ConfigError(
            "--utility-target is measured beside the leakage of a key: this fusion model has "
            "none (train it with --preset fds --sensitive ...)"
        )
    tick = time.perf_counter()
    group = evaluate_multimodal(model, data.X, data.labels, data.factors, fast=fast, seed=seed)
    seconds = {"multimodal": time.perf_counter() - tick}
    leakage = None
    if keyed:
        tick = time.perf_counter()
        budget = FAST if fast else TRUTHFUL
        leakage = measure_leakage(
            model, data, target=utility_target, seed=seed, budget=budget, workers=workers
        )
        seconds["leakage"] = time.perf_counter() - tick
    seconds["total"] = time.perf_counter() - started
    report: dict[str, Any] = {
        "run": {
            "data": data.source,
            "fusion": model.config_.fusion,
            "modalities": model.fusion_.modalities,
            "latent_dim": model.config_.latent_dim,
            "fast": fast,
            "seed": seed,
        },
        **dict.fromkeys(GROUPS),
        "leakage": leakage,
        "multimodal": group,
        "seconds": {key: round(value, 3) for key, value in seconds.items()},
        "notes": ["fusion models train on every record: the figures are on training records"],
    }
    report = plain_json(report)
    if out is not None:
        write_json(Path(out) / EVALUATION_FILE, report)
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a person checks first, flat (for the CLI's summary table)."""
    like = report.get("likelihood") or {}
    health = report.get("latent_health") or {}
    indep = report.get("independence") or {}
    rows: dict[str, Any] = {
        "reconstruction_mse": (report.get("reconstruction") or {}).get("mse"),
        "elbo": like.get("elbo"),
        "iwae": like.get("iwae"),
        "nll_posterior_mean": like.get("nll_posterior_mean"),
        "active_units": f"{health.get('active_units')} / {health.get('latent_dim')}",
        "posterior_collapse": health.get("posterior_collapse"),
        "means_collapsed": health.get("means_collapsed"),
        "tc_gaussian": indep.get("tc_gaussian"),
        "mean_pairwise_mi": indep.get("mean_pairwise_mi"),
        "mean_pairwise_mi_shuffled": indep.get("mean_pairwise_mi_shuffled"),
    }
    if report.get("sparsity"):
        rows["hoyer_sparsity"] = report["sparsity"]["hoyer"]
    dis = report.get("disentanglement") or {}
    for key in ("mig", "dci_disentanglement", "sap", "factor_vae_score"):
        if key in dis:
            rows[key] = dis[key]
    syn = report.get("synthetic") or {}
    if syn.get("kind") == "table":
        rows |= synthetic_table_headline(syn)
        if syn.get("tstr"):
            rows[f"tstr_{syn['tstr']['metric']}"] = syn["tstr"]["tstr"]
            rows[f"trtr_{syn['tstr']['metric']}"] = syn["tstr"]["trtr"]
    elif syn.get("kind") == "images":
        for key in ("precision", "recall", "density", "coverage", "classifier_accuracy"):
            rows[f"sample_{key}" if key != "classifier_accuracy" else key] = syn.get(key)
    rows |= leakage_headline(report.get("leakage"))
    rows |= key_headline(report.get("key"))
    if report.get("multimodal"):
        from fds.workflows.multimodal import multimodal_headline

        rows |= multimodal_headline(report["multimodal"])
    rows["seconds"] = (report.get("seconds") or {}).get("total")
    return rows


def synthetic_table_headline(syn: dict[str, Any]) -> dict[str, Any]:
    """The synthetic-table figures a person checks first (`fds evaluate`'s summary, the report)."""
    quality = syn["quality"]
    rows: dict[str, Any] = {
        "quality_score": quality["quality_score"],
        "column_shapes": quality["column_shapes"],
        "column_pair_trends": f"{_fmt(quality['column_pair_trends'])} (all {quality['n_pairs']} pairs)",
        "sdmetrics_pair_trends_thresholded": (
            f"{_fmt(quality['sdmetrics_column_pair_trends_thresholded'])} "
            f"({quality['n_pairs_thresholded']} strongly related pairs)"
        ),
    }
    fidelity = syn.get("fidelity")
    if fidelity:
        rows["out_of_support_rows"] = fidelity["out_of_support"]["rate"]
        rows["missing_rate_max_error"] = fidelity["missing"]["max_error"]
        rows["category_coverage"] = fidelity["categories"]["coverage"]
        rows["precision_kept"] = fidelity["precision"]["value_share"]
    dcr = syn.get("dcr")
    if dcr:
        rows["dcr_share"] = f"{_fmt(dcr['share'])} ± {_fmt(dcr['spread'])} (0.5 ideal)"
        rows["exact_copies"] = (
            f"{_fmt(dcr['exact_copy_rate'])} (held-out rows: {_fmt(dcr['holdout_exact_copy_rate'])})"
        )
    return rows


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def leakage_headline(leakage: dict[str, Any] | None) -> dict[str, Any]:
    """The leakage figures a person checks first: each block's best accuracy and AUC beside the
    majority, the necessary leakage and the utility; `…_lower_bound` rows where the learning
    curve still rises (the figure is then a lower bound)."""
    if not leakage:
        return {}
    rows: dict[str, Any] = {}
    for attribute, entry in leakage["attributes"].items():
        name = re.sub(r"\W+", "_", attribute)  # factor:shape → factor_shape
        for block in leakage["blocks"]:
            leak, label = entry[block], re.sub(r"\W+", "_", block)  # public_from.image → …_image
            rows[f"leakage_{name}_{label}_best"] = leak["best_accuracy"]
            rows[f"leakage_{name}_{label}_auc"] = leak["best_auc"]
            if leak["lower_bound"]:
                rows[f"leakage_{name}_{label}_lower_bound"] = "yes: the learning curve still rises"
        rows[f"leakage_{name}_majority"] = entry[leakage["blocks"][0]]["majority"]
        if entry.get("necessary"):
            rows[f"leakage_{name}_necessary"] = entry["necessary_accuracy"]
    utility = leakage.get("utility")
    if utility:
        rows[f"utility_{utility['utility_metric']}"] = utility["utility"]
    return rows
