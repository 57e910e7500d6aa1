"""`fds attack`: privacy attacks on a trained run, written to RUN/attacks.json.

The run's own train/validation split (`split_indices` with the training seed, as `FDS.fit` drew it)
says who is a member. The held-out rows are halved at random: one half are the non-member
candidates, the other the attacker's auxiliary/reference data; as many training rows are drawn as
member candidates. Attribute inference is `fds evaluate`'s leakage measurement
(`fds.workflows.leakage.measure_leakage`: attackers fitted on every training row's released
latents, scored on the held-out rows), so both report the same figures. The attacks reach the
model only through `model_queries`' callables. attacks.json holds one key per kind
(``membership``, ``synthetic``, ``inversion``, ``attribute``, ``audit``); running one kind keeps
the others' results. The audit re-trains the run's DP configuration once, so it runs only when
asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from threadpoolctl import threadpool_limits

from fds.data.files import LoadedData
from fds.data.stream import split_indices, take_rows
from fds.errors import ConfigError, DataError
from fds.estimator import FDS
from fds.privacy.attacks import (
    distance_to_closest_record,
    domias,
    membership_inference,
    model_inversion,
)
from fds.privacy.audit import audit_dp_training
from fds.privacy.leakage import TRUTHFUL, Budget
from fds.rundir import ATTACKS_FILE, plain_json, write_json
from fds.runtime.concurrent import seeded_torch
from fds.runtime.threads import choose_workers
from fds.workflows.evaluate import encoded_rows, load_run
from fds.workflows.leakage import leakage_blocks, measure_leakage

__all__ = [
    "KINDS",
    "ModelQueries",
    "attack_path",
    "attack_run",
    "headline",
    "membership",
    "model_queries",
]

KINDS = ("membership", "synthetic", "inversion", "attribute", "audit")
FUSION_KINDS = ("attribute",)  # what a fusion model can be attacked with so far
_MIN_HELD_OUT = 20
_BATCH = 512


@dataclass(frozen=True)
class ModelQueries:
    """What the attacks ask of a fitted model, as callables on arrays in its input space (the
    codec's encoding, flattened): the attack functions never touch the estimator itself."""

    encode: Callable[[Any], np.ndarray]  # rows as given → the model's input space
    elbo: Callable[[np.ndarray], np.ndarray]  # per-row ELBO at one posterior draw
    reconstruct: Callable[[np.ndarray], np.ndarray]  # decoder mean at one posterior draw
    decode: Callable[[np.ndarray], np.ndarray]  # decoder mean at given codes
    generate: Callable[[int], np.ndarray]  # decoder means at n draws of the code distribution


def model_queries(model: FDS) -> ModelQueries:
    """The callables of `model` (its network, codec and fitted code distribution)."""
    net = model.model_.eval()

    @torch.no_grad()
    def batched(fn: Callable[[torch.Tensor], torch.Tensor], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        parts = [fn(torch.from_numpy(rows[i : i + _BATCH])) for i in range(0, len(rows), _BATCH)]
        return torch.cat(parts).reshape(len(rows), -1).numpy()

    def decode(z: np.ndarray) -> np.ndarray:
        return batched(lambda c: net.likelihood.mean(net.decode(c)), z)

    def generate(n: int) -> np.ndarray:
        eps = torch.randn(n, model.config_.latent_dim)
        return decode((model.latent_loc_ + eps @ model.latent_scale_tril_.T).numpy())

    return ModelQueries(
        encode=lambda X: encoded_rows(model, X),
        elbo=lambda x: batched(net.elbo, x)[:, 0],
        reconstruct=lambda x: batched(
            lambda b: net.likelihood.mean(net.decode(net.encode(b, sample=True).z)), x
        ),
        decode=decode,
        generate=generate,
    )


def membership(model: FDS, members: Any, non_members: Any, *, seed: int) -> dict[str, Any]:
    """`membership_inference` on a fitted model's rows (as given), with seeded posterior draws."""
    queries = model_queries(model)
    with seeded_torch(seed):
        return membership_inference(
            queries.encode(members),
            queries.encode(non_members),
            elbo=queries.elbo,
            reconstruct=queries.reconstruct,
            generate=queries.generate,
        )


def attack_run(
    model: FDS,
    data: LoadedData,
    kinds: tuple[str, ...] | list[str] | None = None,
    *,
    n_rows: int = 1000,
    noise_std: float = 0.0,
    seed: int = 0,
    sensitive: tuple[str, ...] | list[str] = (),
    utility_target: str | None = None,
    budget: Budget = TRUTHFUL,
    show_progress: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Run the attacks named in `kinds` on a fitted `model` and the `data` it was trained on.

    At most `n_rows` member and as many non-member candidates; `noise_std` is the standard deviation
    of Gaussian noise added to the latents released to the inversion and attribute attackers (0:
    `fds encode`'s posterior means as they are). `sensitive` names the attributes the attribute
    attacker predicts (default: the model's own sensitive attributes); `utility_target` adds the
    shared latents' utility for it and the leakage it implies; `budget` sets how hard the
    attribute attackers try, and `workers` how many of their fits run side by side. Default
    `kinds`: all of them but the audit, attribute inference only when there are sensitive
    attributes to attack (a fusion model: attribute inference only)."""
    fusion = model.input_kind_ == "multimodal"
    if kinds is None and fusion:
        kinds = list(FUSION_KINDS)  # without sensitive attributes, _attribute asks for them
    if kinds is None:
        kinds = [k for k in KINDS if k != "audit"]
        kinds = [k for k in kinds if k != "attribute" or sensitive or model.sensitive_]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"unknown attack kind {unknown or kinds}: choose from {', '.join(KINDS)}")
    other = [k for k in kinds if k not in FUSION_KINDS]
    if fusion and other:
        raise ConfigError(
            f"--kind {other[0]} is not offered for fusion models yet: attack one with "
            f"--kind {' --kind '.join(FUSION_KINDS)}"
        )
    if n_rows < _MIN_HELD_OUT // 2:
        raise DataError(f"--n-rows must be at least {_MIN_HELD_OUT // 2}, got {n_rows}")
    if noise_std < 0:
        raise DataError(f"--noise must be non-negative, got {noise_std}")
    X, config = data.X, model.config_
    # attribute inference chooses its own rows (measure_leakage); the others need members
    split = None if fusion else _membership_split(model, len(X), n_rows, seed)
    results: dict[str, Any] = {}
    steps = {
        "membership": _membership,
        "synthetic": _synthetic,
        "inversion": _inversion,
        "attribute": _attribute,
        "audit": _audit,
    }
    with (
        threadpool_limits(limits=1, user_api="blas"),
        Progress(console=Console(stderr=True), transient=True, disable=not show_progress) as bar,
    ):
        task = bar.add_task("attacks", total=len(kinds))
        for kind in dict.fromkeys(kinds):
            bar.update(task, description=f"attack: {kind}")
            started = time.perf_counter()
            result = steps[kind](
                model,
                X,
                split,
                seed=seed,
                noise_std=noise_std,
                data=data,
                sensitive=sensitive,
                utility_target=utility_target,
                budget=budget,
                workers=workers,
            )
            result["run"] = {"data": data.source, "preset": config.preset, "seed": seed}
            if split is not None:
                result["run"] |= {f"n_{group}": len(rows) for group, rows in split.items()}
            result["run"]["seconds"] = round(time.perf_counter() - started, 3)
            results[kind] = plain_json(result)
            bar.advance(task)
    return results


def _membership_split(model: FDS, n_rows: int, n_candidates: int, seed: int) -> dict[str, Any]:
    """Member candidates (training rows), non-member candidates (half the held-out rows) and the
    attacker's reference rows (the other half), at most `n_candidates` of each."""
    config = model.config_
    train_idx, val_idx = split_indices(n_rows, config.val_fraction, config.seed)
    if len(val_idx) < _MIN_HELD_OUT:
        raise DataError(
            f"the run held out {len(val_idx)} rows (val_fraction {config.val_fraction}): attacks "
            f"need at least {_MIN_HELD_OUT} held-out non-members; train with a validation split"
        )
    rng = np.random.default_rng(seed)
    held = rng.permutation(val_idx)
    n = min(n_candidates, len(held) // 2)
    non_members, reference = np.sort(held[:n]), np.sort(held[n:][: max(n, n_candidates)])
    members = np.sort(rng.choice(train_idx, min(n, len(train_idx)), replace=False))
    if len(members) < n:
        non_members = non_members[: len(members)]
    return {"members": members, "non_members": non_members, "reference": reference}


def _membership(model: FDS, X: Any, split: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    return membership(
        model, take_rows(X, split["members"]), take_rows(X, split["non_members"]), seed=kw["seed"]
    )


def _synthetic(model: FDS, X: Any, split: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    """DCR and DOMIAS on as many of the model's samples as there are reference rows (×2)."""
    encode = model_queries(model).encode
    members = encode(take_rows(X, split["members"]))
    non_members = encode(take_rows(X, split["non_members"]))
    reference = encode(take_rows(X, split["reference"]))
    synthetic = encode(model.sample(2 * len(reference), seed=kw["seed"]))
    holdout = np.concatenate([non_members, reference])
    return {
        "dcr": distance_to_closest_record(synthetic, members, holdout, seed=kw["seed"]),
        "domias": domias(synthetic, reference, members, non_members),
        "space": "the codec's encoded space (standardized columns, one-hot categories, pixels)",
    }


def _released(
    model: FDS, X: Any, noise_std: float, rng: np.random.Generator, part: str = "all"
) -> np.ndarray:
    Z = model.transform(X, part=part)
    return Z + noise_std * rng.standard_normal(Z.shape).astype(Z.dtype) if noise_std else Z


def _inversion(model: FDS, X: Any, split: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    """The attacker holds the reference rows and their released latents; the targets are members."""
    rng = np.random.default_rng(kw["seed"])
    queries = model_queries(model)
    aux, target = take_rows(X, split["reference"]), take_rows(X, split["members"])
    z_aux, z_target = (
        _released(model, aux, kw["noise_std"], rng),
        _released(model, target, kw["noise_std"], rng),
    )
    x_target = queries.encode(target)
    owner = queries.decode(z_target)
    result = model_inversion(
        z_aux,
        queries.encode(aux),
        z_target,
        x_target,
        float(np.mean((owner - x_target) ** 2)),
        seed=kw["seed"],
    )
    return result | {"noise_std": kw["noise_std"], "latents": "posterior means (fds encode)"}


def _attribute(model: FDS, X: Any, split: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    """Attribute inference on what is shared (the public block of a split model, else all
    latents; a fusion model's encoded from all modalities and from each one alone):
    `fds evaluate`'s leakage measurement, on the same rows with the same seed."""
    names = list(kw["sensitive"]) or [column.name for column in model.sensitive_]
    if not names:
        raise ConfigError(
            "attribute inference needs the attribute to predict: pass --sensitive "
            "COLUMN|label|factor:NAME (this model has no sensitive attributes of its own)"
        )
    part = "public" if model.model_.private_dim else "all"
    result = measure_leakage(
        model,
        kw["data"],
        names=names,
        blocks=leakage_blocks(model, shared_only=True),
        target=kw["utility_target"],
        noise_std=kw["noise_std"],
        seed=kw["seed"],
        budget=kw["budget"],
        workers=kw["workers"],
    )
    return result | {"latents": part}


def _audit(model: FDS, X: Any, split: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    """Steinke et al.'s one-run audit of the run's DP training: its configuration is trained again
    on the training rows plus held-out canaries, each included with probability ½, and the ELBO
    guesses which were in. The lower bound on ε is reported beside the accountant's ε."""
    if model.privacy_ is None:
        raise ConfigError(
            "the audit checks DP training: this run was trained without privacy (DP-SGD)"
        )
    train_rows = np.setdiff1d(
        np.arange(len(X)), np.concatenate([split["non_members"], split["reference"]])
    )
    canaries = take_rows(X, np.concatenate([split["non_members"], split["reference"]]))
    params = model.get_params() | {"val_fraction": 0.0, "verbose": False}

    def train(rows: Any) -> Any:
        return FDS(**params).fit(rows).score_samples

    delta = float(model.privacy_["delta"])
    result = audit_dp_training(
        train, take_rows(X, train_rows), canaries, delta=delta, seed=kw["seed"]
    )
    return result | {
        "accountant_epsilon": float(model.privacy_["epsilon"]),
        "score": "per-example ELBO (black-box: held-out rows of the data as canaries)",
    }


def attack_path(
    model_path: str | Path,
    data: str | None = None,
    kinds: tuple[str, ...] | list[str] | None = None,
    *,
    data_root: str | None = None,
    n_rows: int = 1000,
    noise_std: float = 0.0,
    seed: int = 0,
    sensitive: tuple[str, ...] | list[str] = (),
    utility_target: str | None = None,
    show_progress: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Load a run, run the attacks, and merge their results into RUN/attacks.json (atomically)."""
    model, run_dir, loaded = load_run(model_path, data, data_root)
    results = attack_run(
        model,
        loaded,
        kinds,
        n_rows=n_rows,
        noise_std=noise_std,
        seed=seed,
        sensitive=sensitive,
        utility_target=utility_target,
        show_progress=show_progress,
        workers=choose_workers(),
    )
    path = run_dir / ATTACKS_FILE
    merged = _read_existing(path) | results
    write_json(path, merged)
    return results, path


def _read_existing(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        existing = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path}: not readable JSON ({exc}); move it away to start afresh"
        ) from None
    if not isinstance(existing, dict):
        raise DataError(f"{path}: expected a JSON object")
    return existing


def headline(results: dict[str, Any]) -> dict[str, str]:
    """Each attack's figure beside its baseline, for the CLI summary and the report."""
    rows: dict[str, str] = {}
    member = results.get("membership")
    if member:
        for attack in ("loss", "reconstruction", "monte_carlo"):
            r = member[attack]
            rows[f"membership {attack}: AUC"] = f"{r['auc']:.3f} (chance 0.5)"
            rows[f"membership {attack}: TPR at 1% FPR"] = (
                f"{r['tpr_at_1pct_fpr']:.3f} (chance 0.01)"
            )
    synthetic = results.get("synthetic")
    if synthetic:
        dcr = synthetic["dcr"]
        rows["synthetic DCR: share closer to train"] = (
            f"{dcr['share_closer_to_train']:.3f} (ideal 0.5; p = {dcr['p_value']:.3g}"
            f"{', FLAGGED' if dcr['flagged'] else ''})"
        )
        rows["synthetic DCR: exact copies"] = f"{dcr['exact_copy_fraction']:.3f} (ideal 0)"
        rows["synthetic DOMIAS: AUC"] = f"{synthetic['domias']['auc']:.3f} (chance 0.5)"
    inversion = results.get("inversion")
    if inversion:
        rows["inversion: attacker MSE"] = (
            f"{inversion['attacker_mse']:.4g} (owner {inversion['owner_mse']:.4g}, "
            f"mean predictor {inversion['baseline_mse']:.4g})"
        )
    attribute = results.get("attribute")
    if attribute:
        rows |= _attribute_rows(attribute)
    audit = results.get("audit")
    if audit:
        rows["audit: ε lower bound (95%)"] = (
            f"{audit['epsilon_lower_bound']:.3f} (accountant ε {audit['accountant_epsilon']:.3f}; "
            f"{audit['n_correct']}/{audit['n_guesses']} guesses right)"
        )
    return rows


def _attribute_rows(attribute: dict[str, Any]) -> dict[str, str]:
    """Each attribute's best attacker (accuracy beside the majority, AUC beside 0.5), the
    necessary leakage and the utility, and a line for each figure that is only a lower bound."""
    rows: dict[str, str] = {}
    blocks = attribute["blocks"]
    for name, entry in attribute["attributes"].items():
        for block in blocks:  # one, or a fusion model's sources
            leak, where = entry[block], name if len(blocks) == 1 else f"{name} from {block}"
            auc = "n/a" if leak["best_auc"] is None else f"{leak['best_auc']:.3f}"
            rows[f"attribute {where}: best attacker accuracy"] = (
                f"{leak['best_accuracy']:.3f} (majority {leak['majority']:.3f}, "
                f"{leak['best_attacker']}; {leak['n_train']} attacker rows)"
            )
            rows[f"attribute {where}: best attacker AUC"] = f"{auc} (chance 0.5)"
        if entry.get("necessary"):
            rows[f"attribute {name}: necessary leakage"] = (
                f"{entry['necessary_accuracy']:.3f} (the utility target alone)"
            )
    utility = attribute.get("utility")
    if utility:
        rows[f"utility {utility['target']}: {utility['utility_metric']}"] = (
            f"{utility['utility']:.3f} ({utility['best_model']})"
        )
    for i, note in enumerate(attribute.get("notes", []), 1):
        rows[f"attribute note {i}"] = note
    return rows
