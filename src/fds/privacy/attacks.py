"""Privacy attacks on a trained model, its samples and its released latents, each reported beside
the baseline an attacker gets for free (AUC 0.5, the owner's error, the mean predictor).

Pure functions of scores and arrays (rows in the model's input space, the codec's encoding, so
mixed tables and images are handled alike); the membership attacks reach the model only through
callables (`elbo`, `reconstruct`, `generate`) that `fds.workflows.attack.model_queries` builds:

- membership inference against the model (who was in the training set?):
  * ``loss``: per-example ELBO (averaged over several posterior draws) as
    the score, a threshold attack (Yeom et al. 2018);
  * ``reconstruction``: Hilprecht et al. 2019's reconstruction attack for VAEs: minus the squared
    distance between a record and the decoder means at several posterior draws z ~ q(z|x);
  * ``monte_carlo``: Hilprecht et al.'s Monte Carlo attack on generated samples: the share of
    the model's samples within an ε-ball of the record, ε the median distance from a candidate
    to its nearest sample (their median heuristic).
- synthetic data: `distance_to_closest_record` (DCR: share of synthetic rows closer to the training
  rows than to as many held-out rows; 0.5 is ideal) and `domias` (van Breugel et al. 2023: density
  ratio p_synthetic(x)/p_reference(x) by Gaussian KDE in a whitened PCA space of the reference data).
- `model_inversion`: an attacker with auxiliary records and their released latents fits its own
  decoder and reconstructs the target records from their latents; compare with the owner's error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import KernelDensity, NearestNeighbors
from sklearn.neural_network import MLPRegressor

from fds.errors import DataError

__all__ = [
    "distance_to_closest_record",
    "domias",
    "membership_inference",
    "model_inversion",
    "roc_metrics",
]

_LOW_FPR = 0.01


# --------------------------------------------------------------------------- metrics


def _scores(values: Any, what: str) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        raise DataError(f"{what}: no scores")
    if not np.isfinite(scores).all():
        raise DataError(f"{what}: scores hold NaN or inf")
    return scores


def roc_metrics(member_scores: Any, non_member_scores: Any) -> dict[str, Any]:
    """AUC, TPR at 1% FPR (interpolated on the ROC) and the balanced accuracy of the best
    threshold for an attack that calls "member" when the score is high."""
    members = _scores(member_scores, "member scores")
    others = _scores(non_member_scores, "non-member scores")
    y = np.r_[np.ones(len(members)), np.zeros(len(others))]
    s = np.r_[members, others]
    fpr, tpr, _ = roc_curve(y, s)
    return {
        "auc": float(roc_auc_score(y, s)),
        "tpr_at_1pct_fpr": _tpr_at(fpr, tpr, _LOW_FPR),
        "balanced_accuracy": float(np.max((tpr + 1.0 - fpr) / 2.0)),
        "n_members": len(members),
        "n_non_members": len(others),
    }


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Best TPR at FPR = `target` on the ROC, linear between its corners (a randomised threshold
    achieves every point on a segment); at a vertical step the top of the step counts."""
    i = int(np.searchsorted(fpr, target, side="right")) - 1  # last corner with fpr ≤ target
    if i + 1 >= len(fpr) or fpr[i] == target:
        return float(tpr[i])
    share = (target - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + share * (tpr[i + 1] - tpr[i]))


def _as_matrix(values: Any, what: str) -> np.ndarray:
    X = np.asarray(values, dtype=np.float64)
    X = X.reshape(len(X), -1) if X.ndim != 2 else X
    if len(X) == 0:
        raise DataError(f"{what}: no rows")
    if not np.isfinite(X).all():
        raise DataError(f"{what}: values hold NaN or inf")
    return X


def _same_width(**arrays: np.ndarray) -> None:
    widths = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(widths.values())) > 1:
        raise DataError(f"the arrays have different widths: {widths}")


# --------------------------------------------------------------------------- membership


def _mean_of_draws(
    draw: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, n_draws: int
) -> np.ndarray:
    """The mean over `n_draws` calls of a per-row score that draws from the posterior."""
    total = np.zeros(len(rows), dtype=np.float64)
    for _ in range(n_draws):
        total += _scores(draw(rows), "per-row scores")
    return total / n_draws


def _squared_distance(
    reconstruct: Callable[[np.ndarray], np.ndarray], rows: np.ndarray
) -> np.ndarray:
    """‖x − reconstruct(x)‖² per row (flattened), for one posterior draw."""
    x = rows.reshape(len(rows), -1).astype(np.float64)
    return ((_as_matrix(reconstruct(rows), "reconstructions") - x) ** 2).sum(1)


def _epsilon_ball_scores(candidates: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Share of generated samples within ε of each candidate, ε = median nearest distance."""
    nn = NearestNeighbors().fit(generated)
    nearest = nn.kneighbors(candidates, n_neighbors=1)[0][:, 0]
    radius = float(np.median(nearest))
    counts = nn.radius_neighbors(candidates, radius=radius, return_distance=False)
    return np.array([len(c) for c in counts], dtype=np.float64) / len(generated)


def membership_inference(
    members: Any,
    non_members: Any,
    *,
    elbo: Callable[[np.ndarray], np.ndarray],
    reconstruct: Callable[[np.ndarray], np.ndarray],
    generate: Callable[[int], np.ndarray],
    n_draws: int = 8,
    n_generated: int = 2000,
) -> dict[str, Any]:
    """Three membership attacks on `members` (rows the model trained on) vs `non_members` (held-out
    rows from the same distribution, as many), both in the model's input space (the codec's
    encoding): ``loss``, ``reconstruction``, ``monte_carlo``.

    The model is reached only through callables: `elbo(rows)` (per-row ELBO at one posterior
    draw), `reconstruct(rows)` (decoder mean at one posterior draw, same space as the rows) and
    `generate(n)` (decoder means at n codes from the model's code distribution, flattened). They
    draw their own randomness: seed it around the call for reproducible figures."""
    members = np.asarray(members, dtype=np.float32)
    non_members = np.asarray(non_members, dtype=np.float32)
    if len(members) != len(non_members):
        raise DataError(
            f"members and non-members must be as many, got {len(members)} and {len(non_members)}"
        )
    if len(members) < 2:
        raise DataError(f"need at least 2 members and 2 non-members, got {len(members)}")
    loss = roc_metrics(
        _mean_of_draws(elbo, members, n_draws), _mean_of_draws(elbo, non_members, n_draws)
    )

    def distance(rows: np.ndarray) -> np.ndarray:
        return _squared_distance(reconstruct, rows)

    recon = roc_metrics(
        -_mean_of_draws(distance, members, n_draws),
        -_mean_of_draws(distance, non_members, n_draws),
    )
    generated = _as_matrix(generate(n_generated), "generated samples")
    candidates = np.concatenate([members, non_members]).reshape(2 * len(members), -1)
    ball = _epsilon_ball_scores(candidates, generated)
    monte_carlo = roc_metrics(ball[: len(members)], ball[len(members) :])
    return {
        "loss": loss | {"score": f"per-example ELBO (nats), mean of {n_draws} posterior draws"},
        "reconstruction": recon
        | {"score": f"minus mean squared distance to reconstructions, {n_draws} posterior draws"},
        "monte_carlo": monte_carlo
        | {"score": f"share of {n_generated} generated samples within the median-heuristic ε"},
        "baseline_auc": 0.5,
        "baseline_tpr_at_1pct_fpr": _LOW_FPR,
    }


# --------------------------------------------------------------------------- synthetic data


def distance_to_closest_record(
    synthetic: Any, train: Any, holdout: Any, *, seed: int = 0
) -> dict[str, Any]:
    """DCR: each synthetic row's distance to its closest training row and closest held-out row.

    The larger of `train`/`holdout` is subsampled to the smaller's size, so a generator that does
    not copy its training data puts half its rows closer to each (`share_closer_to_train` 0.5).
    `flagged` is true when the share is above ½ at 5% significance (one-sided binomial test) or
    some synthetic rows are exact copies of training rows.
    """
    S = _as_matrix(synthetic, "synthetic")
    T = _as_matrix(train, "train")
    H = _as_matrix(holdout, "holdout")
    _same_width(synthetic=S, train=T, holdout=H)
    rng = np.random.default_rng(seed)
    n = min(len(T), len(H))
    T = T[np.sort(rng.choice(len(T), n, replace=False))]
    H = H[np.sort(rng.choice(len(H), n, replace=False))]
    d_train = NearestNeighbors(n_neighbors=1).fit(T).kneighbors(S)[0][:, 0]
    d_hold = NearestNeighbors(n_neighbors=1).fit(H).kneighbors(S)[0][:, 0]
    closer = (d_train < d_hold) + 0.5 * (d_train == d_hold)
    share = float(closer.mean())
    wins = int(np.round(closer.sum()))
    p_value = float(stats.binomtest(wins, len(S), 0.5, alternative="greater").pvalue)
    scale = float(np.median(d_hold)) or 1.0
    copies = float(np.mean(d_train <= 1e-6 * scale))
    return {
        "share_closer_to_train": share,
        "ideal_share": 0.5,
        "p_value": p_value,
        "exact_copy_fraction": copies,
        "flagged": bool(p_value < 0.05 or copies > 0),
        "dcr_train_median": float(np.median(d_train)),
        "dcr_holdout_median": float(np.median(d_hold)),
        "dcr_train_p05": float(np.quantile(d_train, 0.05)),
        "dcr_holdout_p05": float(np.quantile(d_hold, 0.05)),
        "n_synthetic": len(S),
        "n_reference_rows": n,
    }


def domias(
    synthetic: Any,
    reference: Any,
    members: Any,
    non_members: Any,
    *,
    n_components: int = 5,
) -> dict[str, Any]:
    """DOMIAS membership attack on synthetic data: score = log p_synthetic(x) − log p_reference(x),
    both Gaussian KDEs (Scott's bandwidth) in a whitened PCA space of at most `n_components`
    dimensions fitted on `reference` (held-out rows the attacker has, disjoint from the candidates). A
    generator that overfits puts extra density on its training rows, which the ratio exposes."""
    S = _as_matrix(synthetic, "synthetic")
    R = _as_matrix(reference, "reference")
    M = _as_matrix(members, "members")
    N = _as_matrix(non_members, "non-members")
    _same_width(synthetic=S, reference=R, members=M, non_members=N)
    k = max(1, min(n_components, R.shape[1], len(R) - 2, len(S) - 2))
    if k < 1 or len(R) < 3 or len(S) < 3:
        raise DataError(
            f"DOMIAS needs at least 3 reference and synthetic rows, got {len(R)}, {len(S)}"
        )
    pca = PCA(n_components=k, whiten=True, random_state=0).fit(R)
    # Isotropic kernels in the reference's whitened PCA space, Scott's bandwidth: unlike a
    # full-covariance KDE this works when the samples are degenerate (a collapsed generator).
    kde_syn = KernelDensity(bandwidth="scott").fit(pca.transform(S))
    kde_ref = KernelDensity(bandwidth="scott").fit(pca.transform(R))

    def ratio(X: np.ndarray) -> np.ndarray:
        P = pca.transform(X)
        return kde_syn.score_samples(P) - kde_ref.score_samples(P)

    return roc_metrics(ratio(M), ratio(N)) | {
        "n_components": k,
        "n_synthetic": len(S),
        "n_reference": len(R),
        "baseline_auc": 0.5,
    }


# --------------------------------------------------------------------------- inversion


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def model_inversion(
    released_latents_aux: Any,
    data_aux: Any,
    released_latents_target: Any,
    data_target: Any,
    owner_mse: float,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """An attacker's own decoder from released (possibly noisy) latents back to the data.

    Two decoders are fitted on 80% of the auxiliary pairs (ridge regression and an MLP), the one
    with the lower error on the other 20% is kept, and its mean squared error per value on the
    target records is reported beside the owner's (`owner_mse`, same records and latents) and the
    error of predicting the auxiliary mean (an attacker who learns nothing from the latents)."""
    Za = _as_matrix(released_latents_aux, "auxiliary latents")
    Xa = _as_matrix(data_aux, "auxiliary data")
    Zt = _as_matrix(released_latents_target, "target latents")
    Xt = _as_matrix(data_target, "target data")
    if len(Za) != len(Xa) or len(Zt) != len(Xt):
        raise DataError("latents and data must have as many rows")
    _same_width(aux_latents=Za, target_latents=Zt)
    _same_width(aux_data=Xa, target_data=Xt)
    if len(Za) < 10:
        raise DataError(f"the attacker needs at least 10 auxiliary records, got {len(Za)}")
    order = np.random.default_rng(seed).permutation(len(Za))
    cut = int(0.8 * len(order))
    fit, val = order[:cut], order[cut:]
    candidates = {
        "ridge": RidgeCV(alphas=np.logspace(-3, 3, 13)),
        "mlp": MLPRegressor(
            hidden_layer_sizes=(256, 256),
            learning_rate_init=1e-3,
            max_iter=300,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=seed,
        ),
    }
    errors: dict[str, float] = {}
    for name, decoder in candidates.items():
        decoder.fit(Za[fit], Xa[fit])
        errors[name] = _mse(decoder.predict(Za[val]), Xa[val])
    best = min(errors, key=errors.__getitem__)
    attacker_mse = _mse(candidates[best].predict(Zt), Xt)
    return {
        "attacker_mse": attacker_mse,
        "owner_mse": float(owner_mse),
        "attacker_over_owner": attacker_mse / owner_mse if owner_mse > 0 else None,
        "baseline_mse": _mse(np.broadcast_to(Xa.mean(0), Xt.shape), Xt),
        "attacker_decoder": best,
        "validation_mse": errors,
        "n_auxiliary": len(Za),
        "n_target": len(Zt),
    }
