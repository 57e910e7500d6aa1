"""Quality of synthetic data: pure functions of real and synthetic samples.

- `table_quality`: SDMetrics' quality report (column shapes, column pair trends over all pairs,
  and SDMetrics' own thresholded figures, named so).
- `tstr`: train on synthetic, test on real, beside train on real, test on real (Esteban et al. 2017).
- `prdc`: precision, recall, density and coverage of fake against real features (Naeem et al.,
  "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020), exact k-NN.
- `image_sample_quality`: PRDC of generated images in the feature space of a small CNN classifier
  trained on real images (`fds.evaluation.image_features`), plus the classifier's accuracy and
  what it sees in the samples.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from fds.errors import DataError
from fds.evaluation.fidelity import check_tables, column_kind
from fds.evaluation.image_features import ImageFeatures, as_pixels

__all__ = ["image_sample_quality", "pair_trends", "prdc", "table_quality", "tstr"]

_MAX_CLASSES_FOR_CLASSIFICATION = 20
_DISTANCE_CHUNK = 1024  # rows of the fake × real distance matrix computed at once


def _finite(value: Any) -> float | None:
    """A float, or None for NaN/inf/None (strict JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- tables


def table_metadata(real: pd.DataFrame) -> dict[str, Any]:
    """SDMetrics single-table metadata from the dtypes: bool → boolean, numbers → numerical,
    everything else (strings, categories, objects) → categorical."""
    return {"columns": {str(name): {"sdtype": column_kind(real[name])} for name in real.columns}}


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return _finite(values.mean()) if len(values) else None


def _sdmetrics_report(real: pd.DataFrame, synthetic: pd.DataFrame) -> Any:
    """SDMetrics' current (unified) QualityReport with its default thresholds."""
    name = "table"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas FutureWarnings inside SDMetrics
        from sdmetrics.reports import QualityReport

        report = QualityReport()
        report.generate(
            {name: real},
            {name: synthetic},
            {"tables": {name: table_metadata(real)}},
            verbose=False,
        )
    return report


def _pearson(pair: pd.DataFrame) -> float | None:
    """Pearson correlation of a two-column frame on its complete rows; None when undefined
    (fewer than two rows, or a constant column)."""
    values = pair.dropna().to_numpy(dtype=np.float64)
    if len(values) < 2 or (values.std(axis=0) == 0).any():
        return None
    return float(np.corrcoef(values.T)[0, 1])


def _correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> float | None:
    """SDMetrics' CorrelationSimilarity, 1 − |r_real − r_synthetic| / 2; a synthetic column that
    is constant (or absent) carries no trend and counts as r = 0; undefined real r → None."""
    r_real = _pearson(real)
    if r_real is None:
        return None
    r_synthetic = _pearson(synthetic)
    return 1.0 - abs(r_real - (r_synthetic or 0.0)) / 2.0


def pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Every column pair's trend score, one row per pair (columns a, b, metric, score).

    Two numerical columns: SDMetrics' CorrelationSimilarity (1 − |Pearson real − synthetic| / 2,
    on the rows where both are present; see `_correlation_similarity`). Any other pair: its ContingencySimilarity (1 − total
    variation distance of the pair's joint frequencies, missing values a category of their own),
    numbers binned into 10 bins whose edges come from the REAL column for both tables. SDMetrics'
    report bins each table on its own range instead, so a sample whose range differs by one
    outlier (or one rare value) shifts every bin and scores low on every pair with that column.
    """
    from sdmetrics.column_pairs import ContingencySimilarity

    kinds = {name: column_kind(real[name]) for name in real.columns}
    rows = []
    names = list(real.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns: pearsonr warns and returns NaN
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                numeric = [c for c in (a, b) if kinds[c] == "numerical"]
                if len(numeric) == 2:
                    metric = "CorrelationSimilarity"
                    score = _correlation_similarity(real[[a, b]], synthetic[[a, b]])
                else:
                    metric = "ContingencySimilarity"
                    score = ContingencySimilarity.compute(
                        real[[a, b]], synthetic[[a, b]], continuous_column_names=numeric or None
                    )
                rows.append((str(a), str(b), metric, _finite(score)))
    return pd.DataFrame(rows, columns=["a", "b", "metric", "score"])


def table_quality(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Quality of `synthetic` against `real` (scores in [0, 1], 1 is best), pair trends over ALL
    column pairs.

    ``column_shapes``: SDMetrics' mean over columns of KSComplement (numerical) or TVComplement
    (categorical, boolean); ``column_pair_trends``: the mean over every column pair of
    `pair_trends`; ``quality_score`` their mean. SDMetrics' own report counts only pairs
    strongly related in the real data (|correlation| > 0.5, Cramér's V > 0.3) and bins each
    table on its own range; its figures are reported separately and named so:
    ``sdmetrics_column_pair_trends_thresholded`` (null when no pair qualifies) over
    ``n_pairs_thresholded`` pairs, and ``sdmetrics_quality_score`` (which then equals the column
    shapes). ``worst_pairs`` lists the five lowest-scoring pairs. Column types come from the
    real table's dtypes (see `table_metadata`).
    """
    real, synthetic = check_tables(real, synthetic)
    real = real.reset_index(drop=True)
    synthetic = synthetic.reset_index(drop=True)
    report = _sdmetrics_report(real, synthetic)
    shapes = report.get_details("Column Shapes")
    strong = report.get_details("Column Pair Trends")
    strong = strong[strong["Score"].notna()]
    pairs = pair_trends(real, synthetic)
    pairs = pairs[pairs["score"].notna()]
    column_shapes = _mean(shapes["Score"])
    trends = _mean(pairs["score"])
    parts = [v for v in (column_shapes, trends) if v is not None]
    worst = pairs.nsmallest(5, "score")
    return {
        "quality_score": float(np.mean(parts)) if parts else None,
        "column_shapes": column_shapes,
        "column_pair_trends": trends,
        "n_pairs": len(pairs),
        "sdmetrics_quality_score": _finite(report.get_score()),
        "sdmetrics_column_pair_trends_thresholded": _mean(strong["Score"]),
        "n_pairs_thresholded": len(strong),
        "column_shape_scores": {
            str(col): _finite(score)
            for col, score in zip(shapes["Column"], shapes["Score"], strict=True)
        },
        "worst_pairs": [
            {"columns": [a, b], "metric": metric, "score": score}
            for a, b, metric, score in worst.itertuples(index=False)
        ],
    }


def _is_regression(column: pd.Series) -> bool:
    """Float columns, and integer columns with many distinct values, are regression targets."""
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        return False
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.dropna()
        return (
            not (np.mod(values, 1) == 0).all() or values.nunique() > _MAX_CLASSES_FOR_CLASSIFICATION
        )
    return column.nunique() > _MAX_CLASSES_FOR_CLASSIFICATION


def _features(frames: list[pd.DataFrame], target: str) -> list[pd.DataFrame]:
    """One-hot features aligned across frames (the categories of all of them); NaN kept for HGB."""
    columns = [c for c in frames[0].columns if c != target]
    stacked = pd.concat([f[columns] for f in frames], keys=range(len(frames)))
    for name in columns:
        column = stacked[name]
        if pd.api.types.is_bool_dtype(column.dtype):
            stacked[name] = column.astype(float)
        elif not pd.api.types.is_numeric_dtype(column.dtype):
            stacked[name] = column.astype(object).where(column.notna(), None).astype(str)
    encoded = pd.get_dummies(stacked, dtype=float)
    return [encoded.xs(i).to_numpy(dtype=np.float64) for i in range(len(frames))]


def tstr(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    real_test: pd.DataFrame,
    target: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Train-synthetic-test-real beside train-real-test-real, with gradient-boosted trees.

    The same model (scikit-learn's HistGradientBoosting, one-hot features) is fitted once on the
    synthetic rows and once on the real training rows, and both are scored on `real_test`:
    ``accuracy`` for a categorical, boolean or integer target with at most 20 values, else
    ``r2``. ``gap`` = trtr − tstr (0 means the synthetic rows teach as much as the real ones).
    A side with a single class cannot train a classifier: its score is None and ``reason`` says
    why. ``majority_baseline`` is the accuracy of always predicting the real training majority.
    """
    frames = [check_tables(real_train, f)[1] for f in (real_train, synthetic, real_test)]
    if target not in real_train.columns:
        raise DataError(
            f"target column {target!r} is not in the table; columns: {', '.join(map(str, real_train.columns))}"
        )
    frames = [f[f[target].notna()] for f in frames]
    if any(len(f) == 0 for f in frames):
        raise DataError(f"target column {target!r} has no values on one side")
    regression = _is_regression(real_train[target])
    X_train, X_syn, X_test = _features(frames, target)
    ys = [f[target] for f in frames]
    if not regression:
        ys = [y.astype(object).astype(str).to_numpy() for y in ys]
    else:
        ys = [y.to_numpy(dtype=np.float64) for y in ys]
    y_train, y_syn, y_test = ys
    result: dict[str, Any] = {
        "target": target,
        "task": "regression" if regression else "classification",
        "metric": "r2" if regression else "accuracy",
        "n_real_train": len(y_train),
        "n_synthetic": len(y_syn),
        "n_real_test": len(y_test),
    }
    reasons = []
    scores = {}
    for name, X, y in (("tstr", X_syn, y_syn), ("trtr", X_train, y_train)):
        side = "synthetic" if name == "tstr" else "real training"
        if not regression and len(np.unique(y)) < 2:
            scores[name] = None
            reasons.append(f"the {side} rows hold a single class of {target!r} ({y[0]!r})")
            continue
        model = (
            HistGradientBoostingRegressor(random_state=seed)
            if regression
            else HistGradientBoostingClassifier(random_state=seed)
        )
        with threadpool_limits(1):  # small fits: thread hand-offs cost more than they save
            model.fit(X, y)
            scores[name] = _finite(model.score(X_test, y_test))
    result["tstr"], result["trtr"] = scores["tstr"], scores["trtr"]
    result["gap"] = (
        None
        if scores["tstr"] is None or scores["trtr"] is None
        else scores["trtr"] - scores["tstr"]
    )
    if not regression:
        values, counts = np.unique(y_train, return_counts=True)
        result["majority_baseline"] = float(np.mean(y_test == values[counts.argmax()]))
    result["reason"] = "; ".join(reasons) or None
    return result


# --------------------------------------------------------------------------- PRDC


def _as_features(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise DataError(f"{what} must be a 2-D (samples, features) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(f"{what} contain NaN or inf")
    return array


def _kth_neighbour_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (the row itself is neighbour 0)."""
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return distances[:, -1]


def prdc(real_features: ArrayLike, fake_features: ArrayLike, k: int = 5) -> dict[str, Any]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with exact Euclidean k-NN.

    Each real point owns a ball reaching its k-th nearest real neighbour (and each fake point one
    reaching its k-th nearest fake neighbour). Precision: share of fakes inside some real ball;
    recall: share of reals inside some fake ball; density: mean number of real balls holding a fake,
    divided by k (≈ 1 when the distributions match, can exceed 1); coverage: share of real balls
    holding at least one fake. Distances are computed in chunks, so memory stays bounded.
    """
    real = _as_features(real_features, "real features")
    fake = _as_features(fake_features, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real features have {real.shape[1]} columns, fake ones {fake.shape[1]}")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    if len(real) <= k or len(fake) <= k:
        raise DataError(f"PRDC with k={k} needs more than {k} real and fake rows")
    real_radii = _kth_neighbour_radii(real, k)
    fake_radii = _kth_neighbour_radii(fake, k)
    inside_count = np.zeros(len(fake))  # real balls holding each fake
    recalled = np.zeros(len(real), dtype=bool)  # real inside some fake ball
    nearest_fake = np.full(len(real), np.inf)
    for start in range(0, len(fake), _DISTANCE_CHUNK):
        chunk = slice(start, start + _DISTANCE_CHUNK)
        d = pairwise_distances(fake[chunk], real)  # (fakes, reals)
        inside_count[chunk] = (d < real_radii[None, :]).sum(axis=1)
        recalled |= (d < fake_radii[chunk, None]).any(axis=0)
        nearest_fake = np.minimum(nearest_fake, d.min(axis=0))
    return {
        "precision": float((inside_count > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float(inside_count.mean() / k),
        "coverage": float((nearest_fake < real_radii).mean()),
        "k": k,
        "n_real": len(real),
        "n_fake": len(fake),
    }


# --------------------------------------------------------------------------- images


def _reference_split(
    n: int, k: int, held_out_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(feature-net training rows, held-out reference rows) of `n` real images."""
    order = rng.permutation(n)
    n_held = max(k + 1, round(n * held_out_fraction))
    if n - n_held < 2 * (k + 1):
        raise DataError(f"need at least {n_held + 2 * (k + 1)} real images, got {n}")
    return np.sort(order[n_held:]), np.sort(order[:n_held])


@threadpool_limits.wrap(limits=1)  # small matrices: BLAS threads cost far more than they save
def image_sample_quality(
    real_images: ArrayLike,
    labels: ArrayLike | None,
    samples: ArrayLike,
    seed: int = 0,
    *,
    features: ImageFeatures | None = None,
    k: int = 5,
    held_out_fraction: float = 0.2,
    n_clusters: int = 10,
) -> dict[str, Any]:
    """PRDC of generated images against held-out real images, in a CNN classifier's feature space.

    With `features` (an `ImageFeatures` the caller fitted on OTHER real images, e.g. the training
    split, and reuses for every model it compares), every one of `real_images` is a reference
    image. Without, the real images are split (seeded): an `ImageFeatures` learns the `labels` on
    the training part, and the rest is the reference. Without labels the classifier learns
    k-means clusters of the pixels instead (``labels_source`` = "kmeans"), which still gives a
    feature space shaped by the real data. `prdc` then compares (at most as many) samples with
    the reference in the classifier's hidden layer, where blur counts against a sample (see
    `fds.evaluation.image_features`). Also reported: the classifier's ``classifier_accuracy`` on
    the reference images (against the k-means clusters without labels; null when a caller's
    `features` come without `labels`), the share of each class among its
    predictions on the samples (``sample_class_histogram``) and that histogram's entropy
    normalised by log(#classes) (``sample_class_entropy``: 1 = all classes equally often; beside
    it the same for the reference images' labels or predictions).
    """
    real, fake = np.asarray(real_images), np.asarray(samples)
    pixels = as_pixels(real, "real images")  # checked here, converted again by the features
    chw = as_pixels(fake, "samples").shape[1:]
    if pixels.shape[1:] != chw:
        raise DataError(f"samples have shape {chw} (C, H, W), the real images {pixels.shape[1:]}")
    y = None if labels is None else np.asarray(labels)
    if y is not None and y.shape != (len(real),):
        raise DataError(f"labels must have shape ({len(real)},), got {y.shape}")
    rng = np.random.default_rng(seed)
    if features is not None:
        held, source = np.arange(len(real)), "features"
    else:
        train, held = _reference_split(len(real), k, held_out_fraction, rng)
        if y is None:
            flat = pixels.reshape(len(pixels), -1)
            kmeans = KMeans(n_clusters=min(n_clusters, len(train)), n_init=1, random_state=seed)
            y = kmeans.fit(flat[train]).predict(flat)
            source = "kmeans"
        else:
            source = "labels"
        features = ImageFeatures(seed).fit(real[train], y[train])
    if len(held) <= k:
        raise DataError(f"PRDC with k={k} needs more than {k} real images, got {len(held)}")
    fake_rows = (
        fake
        if len(fake) <= len(held)
        else fake[np.sort(rng.choice(len(fake), len(held), replace=False))]
    )
    scores = prdc(features.features(real[held]), features.features(fake_rows), k=k)
    classes = features.classes_
    predicted_real = features.predict(real[held])
    reference_classes = predicted_real if y is None else y[held]
    sample_hist = np.array([np.mean(features.predict(fake) == c) for c in classes])
    real_hist = np.array([np.mean(reference_classes == c) for c in classes])
    return {
        "precision": scores["precision"],
        "recall": scores["recall"],
        "density": scores["density"],
        "coverage": scores["coverage"],
        "k": k,
        "n_real": scores["n_real"],
        "n_fake": scores["n_fake"],
        "labels_source": source,
        "feature_space": "cnn classifier hidden layer (fds.evaluation.image_features)",
        "classifier_accuracy": None if y is None else float(np.mean(predicted_real == y[held])),
        "classes": [c.item() if isinstance(c, np.generic) else c for c in classes],
        "sample_class_histogram": sample_hist.tolist(),
        "sample_class_entropy": _normalized_entropy(sample_hist),
        "real_class_entropy": _normalized_entropy(real_hist),
    }


def _normalized_entropy(hist: np.ndarray) -> float | None:
    if len(hist) < 2:
        return None
    p = hist[hist > 0]
    return float(-(p * np.log(p)).sum() / np.log(len(hist))) + 0.0  # never -0.0
