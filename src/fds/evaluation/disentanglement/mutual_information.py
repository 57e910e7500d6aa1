"""The factor × latent mutual-information matrix the report draws as a heatmap (each factor's row
normalised by its entropy, as MIG does)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import mutual_info_score

from fds.errors import DataError
from fds.evaluation.disentanglement.common import discretize, entropy

__all__ = ["factor_latent_mi"]


def factor_latent_mi(
    factors: np.ndarray | pd.DataFrame, codes: np.ndarray, n_bins: int = 20, normalize: bool = True
) -> np.ndarray:
    """(K, D) mutual information (nats) between each factor and each latent dimension.

    Codes are discretised into `n_bins` equal-width bins (`discretize`, as MIG does); with
    `normalize` each row is divided by the factor's entropy, so 1 means the dimension determines
    the factor. Non-numeric factor columns are turned into integer codes first.
    """
    frame = factors if isinstance(factors, pd.DataFrame) else pd.DataFrame(np.asarray(factors))
    codes = np.asarray(codes)
    if len(frame) != len(codes):
        raise DataError(f"factors have {len(frame)} rows but codes have {len(codes)}")
    binned = discretize(codes, n_bins)
    mi = np.zeros((frame.shape[1], codes.shape[1]))
    for k, name in enumerate(frame.columns):
        y = pd.factorize(frame[name])[0]
        mi[k] = [mutual_info_score(y, z) for z in binned.T]
        if normalize:
            h = float(entropy(np.unique(y, return_counts=True)[1]))
            mi[k] = mi[k] / h if h > 0 else 0.0
    return mi
