"""The privacy-utility front of the key against its anchors (issue 12, item 5), in one run on one
split per data set: each method is swept over its hiding weight, and every point is measured by
the one truthful estimator (`fds.privacy.leakage`: utility by `target_utility`, leakage by
`attribute_leakage`, attackers on every attacker row, scored on the test rows).

Methods (public block for the split models, the whole code otherwise):
  fds          the `fds` preset, its group-MMD weight `mmd` swept (tables: its public encoder
               never sees the sensitive column, by construction)
  fds_given    tables: the same told the utility target's column (`mmd_given`): the MMD compares
               the groups within the target's strata (public ⫫ s | target), `mmd` swept
  fds_step     images: the `fds` preset with the quickstart's hiding (the unbiased MMD at 300, the
               public means rounded to a step that starts 4 × coarser over the first half of
               training), the step swept
  raw_without  the table's own columns without the sensitive one (one-hot/standardized);
               images cannot drop the attribute, so they have no such point
  vae_without  a `vae` fitted on the table without the sensitive column; images: a plain `vae`
  leace        a `vae`'s latents (tables: fitted with the column) after LEACE
               (fds.privacy.erasure, Belrose et al. 2023): no linear attacker beats the majority
  grl          gradient reversal (DANN): a `vae` with the key's 2-d private block and an adversary
               on the public block through a reversed gradient, its weight `censor` swept (it also
               weights the private head); tables: public encoder without the column, as `fds`
  vfae         the VFAE as the objectives express it: `fds` with `public_input` "all" (the encoder
               sees x and s), the supervised private block as the decoder's channel for s,
               no between-block independence, no `private_only`, `mmd` swept. Not VFAE: s
               reaches the decoder through a learned 2-d code, not as an input; no semi-supervised
               z2/y hierarchy; MMD on posterior means with relative kernel widths

Verdict: at each anchor point's utility u, the FDS front's leakage (the least leakage among the
FDS points, `fds`, `fds_given` and `fds_step`, with utility ≥ u − TOL_UTILITY) is "at or below" the anchor's when ≤ its leakage +
TOL_LEAKAGE; else the figures of both are printed. Leakage is the best attacker's accuracy
(beside the majority and the necessary leakage: what the target alone reveals).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds import FDS
from fds.privacy.erasure import LeaceEraser
from fds.privacy.leakage import (
    FAST,
    TRUTHFUL,
    attribute_leakage,
    necessary_leakage,
    target_utility,
)
from fds.rundir import atomic_write

LATENT_DIM = 10
PRIVATE_DIM = 2
TOL_LEAKAGE = 0.01  # "at" the anchor: within one point of accuracy
TOL_UTILITY = 0.01
WEIGHTS = {
    "fds": (0.0, 10.0, 30.0, 100.0),
    "fds_given": (10.0, 30.0, 100.0),
    "fds_step": (0.25, 0.5, 1.0),
    "grl": (0.3, 3.0, 10.0),
    "vfae": (0.0, 30.0, 100.0),
}
TARGETS = {"census": "education", "shapes": "x // 4", "slid": "log wages"}
GIVEN = {"census": "education", "slid": "wages"}  # the target's column (images: none)
FDS_METHODS = ("fds", "fds_given", "fds_step")
STEP_HIDING = {"mmd": 300.0, "mmd_estimate": "unbiased"}  # fds_step: the quickstart's censoring
ANCHORS = ("raw_without", "vae_without", "leace", "grl", "vfae")


@dataclass
class FrontData:
    """One data set's split: inputs, sensitive values, target, and how FDS is told about s."""

    name: str
    X_train: Any
    X_test: Any
    s_train: np.ndarray
    s_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    continuous: bool
    hidden: list[int]
    column: str | None  # the table's sensitive column; None for images
    fit_values: Any = None  # images: fit(…, sensitive=values)
    target: str = ""


def load(name: str, n_train: int, n_test: int, seed: int) -> FrontData:
    """census (sex; education), shapes (shape; x // 4), slid (sex; log wages)."""
    from privacy_utility import census, shapes

    if name == "slid":
        from table_hiding import slid_table

        t = slid_table(seed)
        train, test = t.train.iloc[:n_train], t.test.iloc[:n_test]
        return FrontData(
            "slid", train, test, train["sex"].to_numpy(), test["sex"].to_numpy(),
            np.log1p(train["wages"].to_numpy()), np.log1p(test["wages"].to_numpy()),
            True, [256, 256], "sex", target="log wages",
        )  # fmt: skip
    split = (
        census(n_train, n_test, seed, "education")
        if name == "census"
        else shapes(n_train, n_test, seed)
    )
    return FrontData(
        split.name, split.X_train, split.X_test, split.s_train, split.s_test,
        split.y_train, split.y_test, False, [256, 256] if name == "census" else [512, 256],
        "sex" if name == "census" else None, split.fit_values, split.target,
    )  # fmt: skip


def _measure(data: FrontData, z_tr: Any, z_te: Any, label: dict[str, Any]) -> dict[str, Any]:
    seed, budget = label["seed"], FAST if label.pop("quick") else TRUTHFUL
    leak = attribute_leakage(z_tr, data.s_train, z_te, data.s_test, seed=seed, budget=budget)
    use = target_utility(z_tr, data.y_train, z_te, data.y_test, continuous=data.continuous,
                         seed=seed, budget=budget)  # fmt: skip
    point = label | {
        "utility": use["utility"],
        "utility_metric": use["utility_metric"],
        "leakage": leak["best_accuracy"],
        "leakage_auc": leak["best_auc"],
        "attacker": leak["best_attacker"],
        "majority": leak["majority"],
        "lower_bound": bool(leak["lower_bound"]),
        "budget": budget.name,
    }
    print(f"{data.name} {label}: utility {point['utility']:.4f} leakage "
          f"{point['leakage']:.4f}", file=sys.stderr, flush=True)  # fmt: skip
    return point


def _without(data: FrontData) -> tuple[Any, Any]:
    return data.X_train.drop(columns=data.column), data.X_test.drop(columns=data.column)


def _fit(data: FrontData, params: dict[str, Any], X: Any, epochs: int, seed: int) -> FDS:
    base = {"latent_dim": LATENT_DIM, "hidden_dims": data.hidden, "epochs": epochs, "seed": seed}
    params = base | {"verbose": False} | params
    fit_kw: dict[str, Any] = {}
    if "sensitive" in params and data.fit_values is not None:
        fit_kw["sensitive"] = data.fit_values
    return FDS(**params).fit(X, **fit_kw)


def _key(data: FrontData) -> dict[str, Any]:
    """What every split model is told about the attribute."""
    return {"sensitive": (data.column or "factor:shape",), "private_dim": PRIVATE_DIM}


def _raw_without(data: FrontData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table's columns without the sensitive one: one-hot categories, standardized on the
    training rows."""
    X_tr, X_te = _without(data)
    both = pd.get_dummies(pd.concat([X_tr, X_te]), dtype=float)
    train = both.iloc[: len(X_tr)]
    both = (both - train.mean()) / train.std().replace(0, 1)
    return both.iloc[: len(X_tr)], both.iloc[len(X_tr) :]


def _package_gap(z: np.ndarray, s: np.ndarray) -> float | None:
    """Largest difference between fds.privacy.erasure and the `concept-erasure` package on the
    same codes (its benchmark venv, built once); None when the package cannot be installed."""
    import subprocess
    import tempfile

    from peer_env import ensure_env, run_in_env

    try:
        python = ensure_env("leace", ["concept-erasure==0.2.4", "numpy"])
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"concept-erasure not installed ({exc}): closed form only", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "codes.npz", Path(tmp) / "erased.npz"
        np.savez(source, x=z, s=np.unique(s, return_inverse=True)[1])  # no object arrays
        try:
            run_in_env(
                python, Path(__file__).with_name("_leace_package.py"), *map(str, (source, target))
            )
        except subprocess.CalledProcessError as exc:
            print(f"concept-erasure failed: {exc.stderr}", file=sys.stderr)
            return None
        theirs = np.load(target)["erased"]
    return float(np.abs(LeaceEraser.fit(z, s).erase(z) - theirs).max())


def point(
    name: str, method: str, weight: float | None, sizes: tuple[int, int], seed: int,
    epochs: int, quick: bool,
) -> dict[str, Any]:  # fmt: skip
    """One point of the front (one trained model at most): `method` "necessary" gives the
    necessary leakage instead."""
    data = load(name, *sizes, seed)
    label = {"data": name, "method": method, "seed": seed, "weight": weight, "quick": quick}
    label |= {"n_train": len(data.s_train), "n_test": len(data.s_test)}
    if method == "necessary":
        budget = FAST if label.pop("quick") else TRUTHFUL
        nec = necessary_leakage(data.y_train, data.s_train, data.y_test, data.s_test,
                                continuous=data.continuous, seed=seed, budget=budget)  # fmt: skip
        return label | {"leakage": nec["best_accuracy"], "lower_bound": nec["lower_bound"]}
    if method == "raw_without":
        return _measure(data, *_raw_without(data), label)
    if method == "vae_without":
        X_tr, X_te = _without(data) if data.column else (data.X_train, data.X_test)
        model = _fit(data, {"preset": "vae"}, X_tr, epochs, seed)
        return _measure(data, model.transform(X_tr), model.transform(X_te), label)
    if method == "leace":
        model = _fit(data, {"preset": "vae"}, data.X_train, epochs, seed)
        z_tr, z_te = model.transform(data.X_train), model.transform(data.X_test)
        eraser = LeaceEraser.fit(z_tr, data.s_train)
        out = _measure(data, eraser.erase(z_tr), eraser.erase(z_te), label)
        return out | {"package_gap": None if quick else _package_gap(z_tr, data.s_train)}
    if method == "fds_step":
        params = {"preset": "fds", "public_step": weight, "public_step_start": 4 * weight}
        params |= STEP_HIDING | {"public_step_warmup_epochs": epochs / 2} | _key(data)
    elif method in FDS_METHODS:
        params = {"preset": "fds", "mmd": weight} | _key(data)
        if method == "fds_given":
            params["mmd_given"] = (GIVEN[name],)
    elif method == "grl":
        params = {"preset": "vae", "adversary": "gradient_reversal", "censor": weight}
        params |= _key(data)
    else:  # vfae
        params = {"preset": "fds", "mmd": weight, "public_input": "all", "independence": 0.0}
        params |= {"private_only": False} | _key(data)
    model = _fit(data, params, data.X_train, epochs, seed)
    z_tr = model.transform(data.X_train, part="public")
    return _measure(data, z_tr, model.transform(data.X_test, part="public"), label)


def tasks(names: list[str], seeds: list[int], quick: bool) -> list[tuple[str, str, Any, int]]:
    """Every (data, method, weight, seed) of the run; --quick keeps one weight per method."""
    out = []
    for name in names:
        for seed in seeds:
            for method in ("necessary", *FDS_METHODS, *ANCHORS):
                if method in ("raw_without", "fds_given") and name not in GIVEN:
                    continue  # images cannot drop the attribute, nor name a target column
                if method == "fds_step" and name in GIVEN:
                    continue  # the step rounds an image model's public block only
                weights = WEIGHTS.get(method, (None,))
                for weight in weights[-1:] if quick else weights:
                    out.append((name, method, weight, seed))
    return out


def medians(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per (method, weight): the median utility and leakage over seeds."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["method"], p["weight"]), []).append(p)
    return [
        {
            "method": method,
            "weight": weight,
            "seeds": [p["seed"] for p in group],
            "utility": float(np.median([p["utility"] for p in group])),
            "leakage": float(np.median([p["leakage"] for p in group])),
            "leakage_auc": float(np.median([p["leakage_auc"] for p in group])),
            "majority": float(np.median([p["majority"] for p in group])),
            "lower_bound": any(p["lower_bound"] for p in group),
        }
        for (method, weight), group in groups.items()
    ]


def verdicts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At each anchor point's utility, is the FDS front's leakage at or below the anchor's?"""
    fds = [p for p in points if p["method"] in FDS_METHODS]
    out = []
    for a in (p for p in points if p["method"] not in FDS_METHODS):
        reach = [p for p in fds if p["utility"] >= a["utility"] - TOL_UTILITY]
        best = min(reach, key=lambda p: p["leakage"]) if reach else None
        ok = best is not None and best["leakage"] <= a["leakage"] + TOL_LEAKAGE
        out.append(
            {
                "anchor": a["method"],
                "weight": a["weight"],
                "utility": a["utility"],
                "anchor_leakage": a["leakage"],
                "fds_leakage": None if best is None else best["leakage"],
                "fds_weight": None if best is None else best["weight"],
                "fds_at_or_below": ok,
            }
        )
    return out


def assemble(name: str, raw: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The front of one data set from its points: medians over seeds, the necessary leakage,
    the verdicts."""
    necessary = [p for p in raw if p["method"] == "necessary"]
    measured = [p for p in raw if p["method"] != "necessary"]
    points = medians(measured)
    gaps = [p["package_gap"] for p in measured if p.get("package_gap") is not None]
    return meta | {
        "data": name,
        "utility_metric": measured[0]["utility_metric"],
        "n_train": measured[0]["n_train"],
        "n_test": measured[0]["n_test"],
        "necessary_leakage": float(np.median([p["leakage"] for p in necessary])),
        "leace_package_max_gap": max(gaps) if gaps else None,
        "points": points,
        "per_seed": raw,  # the necessary leakage per seed too, so runs can be merged
        "verdicts": verdicts(points),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """(utility, leakage) per method, the FDS points joined by weight; majority and necessary
    leakage as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    markers = {"fds": "o", "fds_given": "*", "fds_step": "X", "raw_without": "s", "vae_without": "D",
               "leace": "^", "grl": "v", "vfae": "P"}  # fmt: skip
    for method, marker in markers.items():
        pts = sorted((p for p in result["points"] if p["method"] == method),
                     key=lambda p: p["weight"] or 0)  # fmt: skip
        if not pts:
            continue
        style = "-" if method in FDS_METHODS else ":"
        images = not any(p["method"] == "raw_without" for p in result["points"])
        label = "vae (plain: images)" if images and method == "vae_without" else method
        ax.plot([p["utility"] for p in pts], [p["leakage"] for p in pts], style, marker=marker,
                label=label, lw=2 if method in FDS_METHODS else 1)  # fmt: skip
        for p in pts:
            if p["weight"] is not None:
                ax.annotate(f"{p['weight']:g}", (p["utility"], p["leakage"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")  # fmt: skip
    majority = np.median([p["majority"] for p in result["points"]])
    ax.axhline(majority, color="grey", ls="--", lw=0.8, label="majority")
    ax.axhline(result["necessary_leakage"], color="black", ls="-.", lw=0.8, label="necessary")
    ax.set_xlabel(f"utility ({result['utility_metric']} of {result['target']}; higher is better)")
    ax.set_ylabel("leakage (best attacker accuracy; lower is better)")
    seeds = result["seeds"]
    ax.set_title(f"{result['data']}: n_train {result['n_train']}, {result['epochs']} epochs, "
                 f"seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
