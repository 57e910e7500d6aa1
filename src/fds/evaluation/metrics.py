"""How well a trained model fits and how healthy its latents are: pure functions of arrays and tensors.

- `elbo_and_iwae`: the evidence lower bound and the importance-weighted bound (Burda, Grosse &
  Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016) in nats per example.
- `latent_health`: KL and information per latent dimension, active units (Burda et al. 2016,
  §5.2) judged by information, posterior collapse, means collapsed while σ carries the data.
- `independence`: total correlation of the aggregate posterior and pairwise mutual information.
- `sparsity`: fraction of near-zero activations and Hoyer sparsity (Hoyer, JMLR 2004).
- `reconstruction_errors`: MSE in the encoded space, per-column errors in the table's own units.

Every number is a plain Python float (or None when undefined), so results dump to strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.metrics import mutual_info_score

from fds.data.image_codec import ImageCodec
from fds.data.tabular import TabularCodec
from fds.errors import DataError
from fds.evaluation.disentanglement import discretize
from fds.models import FactorizedAutoencoder
from fds.objectives.tc import total_correlation

__all__ = [
    "elbo_and_iwae",
    "hoyer",
    "independence",
    "latent_health",
    "reconstruction_errors",
    "sparsity",
]

_LOG_2PI = math.log(2 * math.pi)
_MAX_DECODE_ROWS = 8192  # z-samples decoded at once: bounds memory to ~rows × decoder width
_TC_CHUNK = 512


# --------------------------------------------------------------------------- likelihood


def _diag_normal_log_prob(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(z | mean, diag exp(logvar)) summed over the last axis."""
    return -0.5 * (_LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar)).sum(-1)


def _std_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (_LOG_2PI + z**2).sum(-1)


@torch.no_grad()
def elbo_and_iwae(
    model: FactorizedAutoencoder,
    batches: Iterable[torch.Tensor],
    k: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean ELBO and importance-weighted bound (IWAE) in nats per example, plus the NLL at the mean.

    With log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for z_1..z_k ~ q(z|x):
    ``elbo`` = mean_i log w_i (the Monte-Carlo ELBO over the same k draws) and
    ``iwae`` = log (1/k) Σ_i w_i, so iwae ≥ elbo for every example, they coincide for k = 1, and
    iwae → log p(x) as k grows. ``kl`` is the closed-form KL(q(z|x) ‖ N(0, I)) and
    ``reconstruction_log_likelihood`` the Monte-Carlo E_q log p(x|z); ``nll_posterior_mean`` is
    −log p(x | z = E_q[z]). The k draws are decoded in chunks of at most 8192 rows, so memory is
    bounded whatever k is. Draws come from a generator seeded with `seed`: same seed, same numbers.

    Deterministic (and noisy) codes have no density q(z|x), so there is no bound: ``elbo``,
    ``iwae`` and ``kl`` are None and ``reconstruction_log_likelihood`` is log p(x | code).
    Values are in the units the model sees (pixels in [0, 1], standardized table columns).
    """
    if k < 1:
        raise DataError(f"k (importance samples) must be at least 1, got {k}")
    generator = torch.Generator().manual_seed(seed)
    model = model.eval()
    totals = {"elbo": 0.0, "iwae": 0.0, "kl": 0.0, "recon": 0.0, "nll_mean": 0.0}
    per_block: dict[str, float] = {}
    n = 0
    for x in batches:
        x = torch.as_tensor(x, dtype=torch.float32)
        if len(x) == 0:
            continue
        post = model.encode(x, sample=False)
        params_at_mean = model.decode(post.mean)
        nll_mean = model.likelihood.nll(params_at_mean, x)
        totals["nll_mean"] += float(nll_mean.double().sum())
        if hasattr(model.likelihood, "nll_per_block"):
            for name, values in model.likelihood.nll_per_block(params_at_mean, x).items():
                per_block[name] = per_block.get(name, 0.0) + float(values.double().sum())
        if post.logvar is not None:
            log_w, log_px = _log_weights(model, x, post.mean, post.logvar, k, generator)
            kl = 0.5 * (post.mean**2 + post.logvar.exp() - 1.0 - post.logvar).sum(-1)
            totals["elbo"] += float(log_w.mean(0).sum())
            totals["iwae"] += float((torch.logsumexp(log_w, 0) - math.log(k)).sum())
            totals["kl"] += float(kl.double().sum())
            totals["recon"] += float(log_px.mean(0).sum())
        n += len(x)
    if n == 0:
        raise DataError("no rows to evaluate the likelihood on")
    stochastic = model.stochastic
    return {
        "elbo": totals["elbo"] / n if stochastic else None,
        "iwae": totals["iwae"] / n if stochastic else None,
        "iwae_k": k if stochastic else None,
        "kl": totals["kl"] / n if stochastic else None,
        "reconstruction_log_likelihood": (
            totals["recon"] / n if stochastic else -totals["nll_mean"] / n
        ),
        "nll_posterior_mean": totals["nll_mean"] / n,
        "nll_per_block": {name: value / n for name, value in per_block.items()} or None,
        "n_examples": n,
    }


def _log_weights(
    model: FactorizedAutoencoder,
    x: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    k: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log w = log p(x|z) + log p(z) − log q(z|x), and log p(x|z), for k draws per example.

    Both have shape (k, batch) and dtype float64."""
    batch, dim = mean.shape
    chunk = max(1, _MAX_DECODE_ROWS // batch)
    std = torch.exp(0.5 * logvar)
    parts, recon = [], []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        eps = torch.randn((c, batch, dim), generator=generator, dtype=mean.dtype)
        z = mean + std * eps
        flat = z.reshape(c * batch, dim)
        x_rep = x.unsqueeze(0).expand(c, *x.shape).reshape(c * batch, *x.shape[1:])
        log_px = -model.likelihood.nll(model.decode(flat), x_rep).view(c, batch)
        log_pz = _std_normal_log_prob(z)
        log_qz = _diag_normal_log_prob(z, mean, logvar)
        parts.append((log_px + log_pz - log_qz).double())
        recon.append(log_px.double())
    return torch.cat(parts), torch.cat(recon)


# --------------------------------------------------------------------------- latent health


def _as_codes(codes: ArrayLike, what: str = "codes") -> np.ndarray:
    values = np.asarray(codes, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"{what} must be a 2-D (samples, dims) array, got shape {values.shape}")
    if len(values) < 2:
        raise DataError(f"{what} need at least 2 rows, got {len(values)}")
    if not np.isfinite(values).all():
        raise DataError(f"{what} contain NaN or inf")
    return values


def _as_logvar(logvar: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if logvar is None:
        return None
    values = np.asarray(logvar, dtype=np.float64)
    if values.shape != shape:
        raise DataError(f"logvar has shape {values.shape}, the means {shape}")
    if not np.isfinite(values).all():
        raise DataError("logvar contains NaN or inf")
    return values


def latent_health(
    mean: np.ndarray, logvar: np.ndarray | None, *, active_threshold: float = 0.01
) -> dict[str, Any]:
    """KL and information per dimension, active units, posterior collapse, and means that
    collapsed while σ carries the data.

    ``activity`` is Cov_x(E_q[z|x]), the variance over the data of each posterior mean (Burda et
    al. 2016 call a dimension active above 0.01; the prior's variance is 1). ``kl_per_dim`` is
    KL(q(z_d|x) ‖ N(0, 1)) averaged over the rows. The spread of the means alone misses a
    dimension whose means barely move while the per-row σ varies, or whose σ is smaller still
    than the means' tiny spread: such a code still carries the data. So for a Gaussian
    posterior ``information_per_dim`` is E_x KL(q(z_d|x) ‖ r_d), r_d the Gaussian with the
    aggregate posterior's mean and variance:

        ½·(ln(Var_x μ + E_x σ²) − E_x ln σ²)
          = ½·(ln E_x σ² − E_x ln σ²)      from σ varying across rows (Jensen's gap)
          + ½·ln(1 + Var_x μ / E_x σ²)     from the means' spread measured against σ

    in nats: 0 when every row has the same posterior (whatever the KL from the prior), at least
    I(x; z_d) and at most ``kl_per_dim``. A dimension is *active* when its means spread by more
    than `active_threshold` or its information exceeds ½·ln(1 + `active_threshold`) (the same
    bar for a unit σ). ``means_collapsed_dims`` are active only through their information: their
    means barely vary, so decoding the means (`fds encode`, then `fds decode`) loses what they
    carry; ``warnings`` say why for each. ``posterior_collapse`` is True when a Gaussian posterior
    has more than half its dimensions inactive; for deterministic codes the same count is
    reported as dead units. The spread threshold is absolute, so for deterministic codes it
    assumes codes on roughly unit scale.
    """
    mu = _as_codes(mean, "latent means")
    lv = _as_logvar(logvar, mu.shape)
    dims = mu.shape[1]
    activity = mu.var(axis=0, ddof=1)
    spread = activity > active_threshold
    information_threshold = 0.5 * math.log1p(active_threshold)
    kl_per_dim = information = None
    informative = np.zeros(dims, dtype=bool)
    warnings: list[str] = []
    if lv is not None:
        kl_per_dim = (0.5 * (mu**2 + np.exp(lv) - 1.0 - lv)).mean(axis=0)
        from_sigma, from_means = _information_parts(mu, lv)
        information = from_sigma + from_means
        informative = information > information_threshold
    active = spread | informative
    n_active = int(active.sum())
    collapsed_means = np.flatnonzero(informative & ~spread)
    if len(collapsed_means):
        warnings.append(_means_collapsed_warning(collapsed_means, mu, lv, active_threshold))
    collapse = lv is not None and (dims - n_active) > dims / 2
    if (dims - n_active) > dims / 2:
        if lv is not None:
            warnings.append(
                f"posterior collapse: {dims - n_active} of {dims} latent dimensions are inactive "
                f"(their posterior mean varies by ≤ {active_threshold} across the data and their "
                f"posteriors carry ≤ {information_threshold:.4f} nats about the row); lower kl, "
                "add free_bits or kl_warmup_epochs, or use a smaller latent_dim"
            )
        else:
            warnings.append(
                f"{dims - n_active} of {dims} code dimensions are (nearly) dead: their variance "
                f"across the data is ≤ {active_threshold}; a smaller latent_dim would do"
            )
    return {
        "latent_dim": dims,
        "active_units": n_active,
        "active_dims": np.flatnonzero(active).tolist(),
        "active_threshold": active_threshold,
        "activity": activity.tolist(),
        "kl_per_dim": None if kl_per_dim is None else kl_per_dim.tolist(),
        "kl_total": None if kl_per_dim is None else float(kl_per_dim.sum()),
        "information_per_dim": None if information is None else information.tolist(),
        "information_threshold": None if lv is None else information_threshold,
        "means_collapsed_dims": collapsed_means.tolist(),
        "means_collapsed": bool(len(collapsed_means)),
        "posterior_collapse": bool(collapse),
        "warnings": warnings,
    }


def _information_parts(mu: np.ndarray, lv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per dimension, the information from σ varying across rows and from the means' spread
    against σ (nats; see `latent_health`)."""
    var = np.exp(lv)
    mean_var = var.mean(axis=0)
    from_sigma = 0.5 * (np.log(mean_var) - lv.mean(axis=0))
    from_means = 0.5 * np.log1p(mu.var(axis=0) / mean_var)
    return np.maximum(from_sigma, 0.0), from_means


def _means_collapsed_warning(
    dims: np.ndarray, mu: np.ndarray, lv: np.ndarray, threshold: float
) -> str:
    """Which dimensions carry the data outside the spread of their means, and how."""
    from_sigma, from_means = _information_parts(mu, lv)
    reasons = []
    for d in dims:
        sd_means, median_sigma = float(mu[:, d].std()), float(np.exp(0.5 * np.median(lv[:, d])))
        if from_sigma[d] >= from_means[d]:
            why = (
                f"per-row σ varies (log σ sd {float(0.5 * lv[:, d].std()):.2f}) and carries "
                f"{from_sigma[d]:.2f} nats"
            )
        else:
            why = (
                f"means vary by sd {sd_means:.3g} on the scale of a smaller σ (median "
                f"{median_sigma:.3g}): {from_means[d]:.2f} nats"
            )
        reasons.append(f"dim {int(d)}: {why}")
    return (
        f"means collapsed while σ carries the data: {len(dims)} latent dimension(s) have posterior "
        f"means that vary by ≤ {threshold} across the data yet carry information ("
        + "; ".join(reasons)
        + "). Decoding the posterior means loses it, and the means can still leak it to an "
        "attacker that rescales them"
    )


# --------------------------------------------------------------------------- independence


def gaussian_total_correlation(codes: ArrayLike, logvar: ArrayLike | None = None) -> float:
    """TC of a Gaussian with the aggregate posterior's covariance: 0.5·(Σ_j log Σ_jj − log det Σ).

    Σ = Cov_x(codes), plus E_x[diag exp(logvar)] when log-variances are given: the covariance of
    the aggregate posterior q(z) = E_x q(z|x), so a collapsed dim (posterior ≈ prior) counts as
    the independent noise it is. In nats; equals −0.5·log det R for the correlation matrix R.
    Constant dims are left out (they are independent of everything) and R's eigenvalues are
    floored at 1e-12, so a duplicated dim gives a large finite value (≈ 13.8) instead of infinity.
    """
    c = _as_codes(codes)
    lv = _as_logvar(logvar, c.shape)
    cov = np.atleast_2d(np.cov(c, rowvar=False))
    if lv is not None:
        cov = cov + np.diag(np.exp(lv).mean(axis=0))
    keep = np.diag(cov) > 1e-24
    cov = cov[np.ix_(keep, keep)]
    if len(cov) < 2:
        return 0.0
    std = np.sqrt(np.diag(cov))
    corr = cov / np.outer(std, std)
    eig = np.clip(np.linalg.eigvalsh(corr), 1e-12, None)
    return float(max(0.0, -0.5 * np.log(eig).sum()))


@torch.no_grad()
def _minibatch_tc(mean: np.ndarray, logvar: np.ndarray, seed: int) -> float:
    """β-TCVAE's minibatch-stratified estimator on posterior draws, averaged over chunks of ~512."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(mean))
    n_chunks = max(1, round(len(mean) / _TC_CHUNK))
    generator = torch.Generator().manual_seed(seed)
    total, weight = 0.0, 0
    for idx in np.array_split(order, n_chunks):
        if len(idx) < 2:
            continue
        mu = torch.from_numpy(mean[idx])
        lv = torch.from_numpy(logvar[idx])
        z = mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        total += float(total_correlation(z, mu, lv, len(mean), "mss")) * len(idx)
        weight += len(idx)
    return total / weight


def independence(
    codes: np.ndarray, logvar: np.ndarray | None, n_bins: int = 20, *, seed: int = 0
) -> dict[str, Any]:
    """How far the latents are from independent: total correlation and pairwise mutual information.

    - ``tc_gaussian``: TC of the aggregate posterior under a Gaussian with its covariance
      (`gaussian_total_correlation`; 0 iff the dims are uncorrelated, blind to non-linear
      dependence).
    - ``tc_minibatch``: when `logvar` is given, the minibatch-stratified estimator of β-TCVAE
      (`fds.objectives.tc.total_correlation`) on one draw z ~ q(z|x) per row, averaged over
      shuffled chunks of ~512 rows (None otherwise). It is a biased, noisy estimate and can be
      slightly negative.
    - ``mean_pairwise_mi`` (nats): mutual information of every pair of dims of the aggregate
      posterior (one draw z ~ q(z|x) per row when `logvar` is given, else the codes), after
      equal-width discretisation into `n_bins` bins (disentanglement_lib's histogram
      discretiser), averaged; ``pairwise_mi`` holds the matrix. Histogram MI is biased upwards by
      about (n_bins − 1)² / (2N) nats, so ``mean_pairwise_mi_shuffled`` gives the same estimate
      with one dim of each pair shuffled: what independent dims would score at this sample size.
    """
    c = _as_codes(codes)
    lv = _as_logvar(logvar, c.shape)
    dims = c.shape[1]
    rng = np.random.default_rng(seed)
    draws = c if lv is None else c + np.exp(0.5 * lv) * rng.standard_normal(c.shape)
    binned = discretize(draws, n_bins)
    mi = np.zeros((dims, dims))
    shuffled = []
    for i in range(dims):
        mi[i, i] = mutual_info_score(binned[:, i], binned[:, i])
        for j in range(i + 1, dims):
            mi[i, j] = mi[j, i] = mutual_info_score(binned[:, i], binned[:, j])
            shuffled.append(mutual_info_score(binned[:, i], rng.permutation(binned[:, j])))
    upper = mi[np.triu_indices(dims, 1)]
    return {
        "tc_gaussian": gaussian_total_correlation(c, lv),
        "tc_minibatch": None if lv is None else _minibatch_tc(c, lv, seed),
        "mean_pairwise_mi": float(upper.mean()) if len(upper) else None,
        "max_pairwise_mi": float(upper.max()) if len(upper) else None,
        "mean_pairwise_mi_shuffled": float(np.mean(shuffled)) if shuffled else None,
        "pairwise_mi": mi.tolist(),
        "n_bins": n_bins,
    }


# --------------------------------------------------------------------------- sparsity


def hoyer(codes: ArrayLike) -> np.ndarray:
    """Hoyer sparsity per row, (√d − ‖z‖₁/‖z‖₂)/(√d − 1): 1 for one-hot, 0 for a constant vector.

    Rows that are all zero have no direction and get NaN; d must be at least 2.
    """
    c = np.asarray(codes, dtype=np.float64)
    d = c.shape[1]
    if d < 2:
        raise DataError("Hoyer sparsity needs at least 2 dims per row")
    l1 = np.abs(c).sum(axis=1)
    l2 = np.sqrt((c**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(l2 > 0, l1 / np.where(l2 > 0, l2, 1.0), np.nan)
    return (math.sqrt(d) - ratio) / (math.sqrt(d) - 1)


def sparsity(
    codes: np.ndarray, threshold: float = 0.05, *, relative: bool = True
) -> dict[str, Any]:
    """Fraction of near-zero activations and mean Hoyer sparsity of the rows.

    An activation z_nd is near zero when |z_nd| ≤ threshold · max_n |z_nd| (relative, the default:
    each dim is judged against its own largest activation, so the unit of the code does not
    matter), or when |z_nd| ≤ threshold (``relative=False``). ``hoyer`` averages the Hoyer measure
    over rows with a non-zero code (None for a one-dim code).
    """
    c = _as_codes(codes)
    if threshold < 0:
        raise DataError(f"threshold must be non-negative, got {threshold}")
    scale = np.abs(c).max(axis=0) if relative else np.ones(c.shape[1])
    near_zero = np.abs(c) <= threshold * scale
    per_dim = near_zero.mean(axis=0)
    hoyer_mean = None
    if c.shape[1] >= 2:
        values = hoyer(c)
        values = values[np.isfinite(values)]
        hoyer_mean = float(values.mean()) if len(values) else None
    return {
        "near_zero_fraction": float(near_zero.mean()),
        "near_zero_fraction_per_dim": per_dim.tolist(),
        "hoyer": hoyer_mean,
        "threshold": threshold,
        "relative": relative,
    }


# --------------------------------------------------------------------------- reconstruction


def reconstruction_errors(
    codec: Any, x_encoded: np.ndarray, x_hat_encoded: np.ndarray
) -> dict[str, Any]:
    """Reconstruction error overall (MSE in the encoded space) and, where it means something, per column.

    `x_hat_encoded` is the decoder mean (probabilities for binary and categorical blocks).
    - Tables (`TabularCodec`): both are decoded with the codec; continuous and count columns get
      ``rmse`` and ``mae`` in the column's own units and ``rmse_over_std`` (RMSE ÷ the column's
      standard deviation: 1 is what predicting the mean would score), binary and categorical
      columns the ``accuracy`` of the decoded value.
    - Images (`ImageCodec`): ``pixel_mse`` on [0, 1] pixels and ``psnr`` in dB.
    """
    x = np.asarray(x_encoded, dtype=np.float64)
    x_hat = np.asarray(x_hat_encoded, dtype=np.float64)
    if x.shape != x_hat.shape or x.ndim != 2:
        raise DataError(
            f"x and its reconstruction must be 2-D arrays of one shape, got {x.shape} and {x_hat.shape}"
        )
    if len(x) == 0:
        raise DataError("no rows to measure the reconstruction on")
    mse = float(((x - x_hat) ** 2).mean())
    result: dict[str, Any] = {"mse": mse, "n_examples": len(x)}
    if isinstance(codec, ImageCodec):
        result["pixel_mse"] = mse
        result["psnr"] = float(10 * np.log10(1.0 / mse)) if mse > 0 else None
    elif isinstance(codec, TabularCodec):
        result["columns"] = _column_errors(codec, x, x_hat)
    return result


def _column_errors(codec: TabularCodec, x: np.ndarray, x_hat: np.ndarray) -> dict[str, Any]:
    real = codec.decode(x.astype(np.float32))
    rebuilt = codec.decode(x_hat.astype(np.float32))
    if isinstance(real, np.ndarray):
        real = dict(zip(codec.feature_names, real.T, strict=True))
        rebuilt = dict(zip(codec.feature_names, rebuilt.T, strict=True))
    errors: dict[str, Any] = {}
    for spec in codec.columns:
        a, b = np.asarray(real[spec.name]), np.asarray(rebuilt[spec.name])
        if spec.kind in ("continuous", "count"):
            a, b = a.astype(np.float64), b.astype(np.float64)
            both = ~(np.isnan(a) | np.isnan(b))  # missing: model decodes gaps to NaN
            a, b = a[both], b[both]
            diff = a - b
            rmse = float(np.sqrt((diff**2).mean()))
            std = float(a.std())
            errors[spec.name] = {
                "kind": spec.kind,
                "rmse": rmse,
                "mae": float(np.abs(diff).mean()),
                "rmse_over_std": rmse / std if std > 0 else None,
            }
        else:
            errors[spec.name] = {
                "kind": spec.kind,
                "accuracy": float(np.mean([u == v for u, v in zip(a, b, strict=True)])),
            }
    return errors
