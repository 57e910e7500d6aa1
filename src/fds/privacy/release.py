"""DP release of latent vectors: clip each row to L2 norm C, add Gaussian noise of the analytic scale.

The analytic Gaussian mechanism (Balle & Wang, ICML 2018, Theorem 8): adding N(0, σ²I) to a query of
L2 sensitivity Δ is (ε, δ)-DP if and only if

    Φ(Δ/(2σ) − εσ/Δ) − e^ε · Φ(−Δ/(2σ) − εσ/Δ) ≤ δ,

so the smallest such σ is found by bisection on this exact condition. It is smaller than the
classical σ = Δ·√(2 ln(1.25/δ))/ε, which is in any case only valid for ε < 1.

Neighbouring relation: each released row depends on one record only (z = encode(x) with a fixed
model), so a record changing its value moves one row by at most Δ = 2C after clipping (replace-one
neighbours). The number and order of rows are not hidden: the release protects each record's
values, not its presence. The model itself is not covered (it is DP only if trained with DP-SGD).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

from fds.errors import ConfigError, DataError

NEIGHBOURS = "replace-one (a record's value changes; its row's presence is public)"


def _check(epsilon: float, delta: float, sensitivity: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ConfigError(f"epsilon must be a positive number, got {epsilon}")
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), got {delta}")
    if not (sensitivity > 0 and math.isfinite(sensitivity)):
        raise ConfigError(f"the clipping norm must be positive, got {sensitivity}")


def _delta_of(sigma: float, epsilon: float, sensitivity: float) -> float:
    """The smallest δ for which N(0, σ²) noise on a Δ-sensitive query is (ε, δ)-DP."""
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    return float(norm.cdf(a - b) - math.exp(epsilon + norm.logcdf(-a - b)))


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest σ with (ε, δ)-DP for L2 sensitivity Δ (Balle & Wang 2018), to 1e-10 relative."""
    _check(epsilon, delta, sensitivity)
    lo, hi = 1e-6 * sensitivity, sensitivity
    while _delta_of(hi, epsilon, sensitivity) > delta:
        lo, hi = hi, hi * 2
    while hi - lo > 1e-10 * hi:
        mid = (lo + hi) / 2
        if _delta_of(mid, epsilon, sensitivity) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def classical_gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Dwork & Roth's σ = Δ·√(2 ln(1.25/δ))/ε (valid for ε < 1); a reference, not used to release."""
    _check(epsilon, delta, sensitivity)
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def clip_rows(Z: np.ndarray, clip: float) -> np.ndarray:
    """Each row scaled down (never up) to L2 norm at most `clip`."""
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z * np.minimum(1.0, clip / np.maximum(norms, 1e-12))


def release_metadata(epsilon: float, delta: float, clip: float, rows: int) -> dict[str, Any]:
    """What a release of `rows` rows will be (σ for Δ = 2·clip), known before any data is touched."""
    sensitivity = 2.0 * clip
    sigma = analytic_gaussian_sigma(epsilon, delta, sensitivity)
    return {
        "mechanism": "analytic-gaussian",
        "epsilon": float(epsilon),
        "delta": float(delta),
        "clip": float(clip),
        "sensitivity": sensitivity,
        "noise_std": sigma,
        "noise_multiplier": sigma / sensitivity,
        "neighbours": NEIGHBOURS,
        "rows": int(rows),
        "covers": "each released row's values, for one release; not the model, not other releases",
    }


def release_latents(
    Z: np.ndarray,
    epsilon: float,
    delta: float,
    clip: float,
    seed: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(noisy latents, metadata): rows clipped to norm `clip`, plus N(0, σ²) with σ for Δ = 2·clip.

    `seed` None draws fresh OS entropy; a seed an adversary knows lets them subtract the noise,
    so it is never written to the metadata and should only be set for tests.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) == 0:
        raise DataError(f"expected latents of shape (N, d) with N ≥ 1, got {Z.shape}")
    if not np.isfinite(Z).all():
        raise DataError("latents hold NaN or inf")
    metadata = release_metadata(epsilon, delta, clip, len(Z))
    rng = np.random.default_rng(seed)
    noisy = clip_rows(Z, clip) + rng.normal(0.0, metadata["noise_std"], size=Z.shape)
    return noisy.astype(np.float32), metadata
