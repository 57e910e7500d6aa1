"""LEACE's closed form (fds.privacy.erasure) has the properties the paper proves: every class has
the same mean code afterwards, so a linear attacker is left at the majority, and the edit is a
projection that moves them along as few directions as the attribute has classes less one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fds.errors import DataError
from fds.privacy.erasure import LeaceEraser


def _codes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated 6-d codes whose three classes shift the mean along different directions."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, n)
    shifts = rng.normal(size=(3, 6)) * 2.0
    mix = rng.normal(size=(6, 6))
    return rng.normal(size=(n, 6)) @ mix + shifts[s], s


def test_class_means_coincide_after_erasure() -> None:
    x, s = _codes(4000, 0)
    erased = LeaceEraser.fit(x, s).erase(x)
    means = np.stack([erased[s == k].mean(0) for k in range(3)])
    assert np.abs(means - means.mean(0)).max() < 1e-8
    before = np.stack([x[s == k].mean(0) for k in range(3)])
    assert np.abs(before - before.mean(0)).max() > 0.5  # the data did carry the attribute


def test_no_linear_attacker_beats_the_majority_on_new_rows() -> None:
    x, s = _codes(6000, 1)
    eraser = LeaceEraser.fit(x[:4000], s[:4000])
    before = LogisticRegression(max_iter=500).fit(x[:4000], s[:4000]).score(x[4000:], s[4000:])
    train, test = eraser.erase(x[:4000]), eraser.erase(x[4000:])
    after = LogisticRegression(max_iter=500).fit(train, s[:4000]).score(test, s[4000:])
    majority = np.bincount(s[4000:]).max() / 2000
    assert before > majority + 0.3
    assert after < majority + 0.03


def test_is_a_projection_of_rank_classes_minus_one() -> None:
    """The least-change edit: idempotent, and it moves codes along k − 1 directions only."""
    x, s = _codes(3000, 2)
    eraser = LeaceEraser.fit(x, s)
    once = eraser.erase(x)
    np.testing.assert_allclose(eraser.erase(once), once, atol=1e-8)
    assert np.linalg.matrix_rank(x - once, tol=1e-8) == 2


def test_matches_the_concept_erasure_package_when_installed() -> None:
    leace = pytest.importorskip(
        "concept_erasure", reason="concept-erasure is not installed (benchmark venv only)"
    )
    torch = pytest.importorskip("torch")
    x, s = _codes(2000, 4)
    ours = LeaceEraser.fit(x, s).erase(x)
    z = torch.nn.functional.one_hot(torch.as_tensor(s)).double()
    eraser = leace.LeaceEraser.fit(torch.as_tensor(x), z, shrinkage=False)  # the exact closed form
    theirs = eraser(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_bad_input_is_refused() -> None:
    with pytest.raises(DataError, match="single value"):
        LeaceEraser.fit(np.zeros((5, 2)), np.ones(5))
    eraser = LeaceEraser.fit(*_codes(100, 5))
    with pytest.raises(DataError, match="width 6"):
        eraser.erase(np.zeros((3, 4)))
