"""Linear concept erasure, LEACE (Belrose et al. 2023, "LEACE: Perfect linear concept erasure in
closed form"): the least-squares edit of the codes after which no linear classifier predicts the
attribute better than a constant. A baseline for the key's public block (benchmarks/privacy_utility.py
--front) and a tool for users who must strip an attribute from codes they already have.

The eraser is the oblique projection r(x) = x − W⁺ P W (x − μ), with W = Σ_xx^(−1/2) the whitening
matrix, W⁺ its pseudo-inverse and P the orthogonal projection onto the column space of W Σ_xz
(z the one-hot attribute). After it the cross-covariance Σ_{r(x) z} is zero, i.e. every class has
the same mean code: linear attackers are left at the majority. Nonlinear attackers are not, which
is what the benchmark measures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fds.errors import DataError

__all__ = ["LeaceEraser"]

# Eigenvalues of Σ_xx below this share of the largest are treated as zero (a rank-deficient code)
RANK_TOL = 1e-10


@dataclass(frozen=True)
class LeaceEraser:
    """The fitted eraser: `erase(x) = x − (x − mean) @ projection.T`."""

    mean: np.ndarray
    projection: np.ndarray  # W⁺ P W, shape (d, d)

    @classmethod
    def fit(cls, x: Any, s: Any) -> LeaceEraser:
        """Fit on codes `x` (n × d) and attribute values `s` (n labels, any hashable type)."""
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(s).ravel()
        if x.ndim != 2 or len(x) != len(labels):
            raise DataError(
                f"LEACE needs codes of shape (n, d) and n attribute values; got codes "
                f"{x.shape} and {len(labels)} values"
            )
        classes, index = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise DataError("the attribute has a single value: there is nothing to erase")
        z = np.eye(len(classes))[index]
        mean = x.mean(0)
        xc, zc = x - mean, z - z.mean(0)
        sigma_xx = xc.T @ xc / len(x)
        sigma_xz = xc.T @ zc / len(x)
        values, vectors = np.linalg.eigh(sigma_xx)
        keep = values > RANK_TOL * max(values.max(), 0.0)
        root = np.sqrt(np.where(keep, values, 1.0))
        w = (vectors * np.where(keep, 1 / root, 0.0)) @ vectors.T  # Σ^(−1/2) on its range
        w_pinv = (vectors * np.where(keep, root, 0.0)) @ vectors.T  # Σ^(1/2)
        u, singular, _ = np.linalg.svd(w @ sigma_xz, full_matrices=False)
        u = u[:, singular > RANK_TOL * max(singular.max(initial=0.0), 1e-300)]
        return cls(mean, w_pinv @ (u @ u.T) @ w)

    def erase(self, x: Any) -> np.ndarray:
        """The codes with the attribute's linear trace removed (same shape, float64)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise DataError(
                f"the eraser was fitted on codes of width {len(self.mean)}; got shape {x.shape}"
            )
        return x - (x - self.mean) @ self.projection.T
