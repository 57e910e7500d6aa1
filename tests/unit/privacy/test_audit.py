"""The one-run ε audit: the bound on constructed counts, and on real DP-SGD runs (Opacus) where a
correct run must stay under its accountant's ε and a run without noise must be caught."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from fds.errors import DataError
from fds.privacy.audit import audit_dp_training, epsilon_lower_bound, guess_counts

DELTA = 1e-5
N_REAL, N_FEATURES, N_CANARIES = 300, 10, 1000
BATCH, EPOCHS = 64, 4


# --------------------------------------------------------------------------- the bound


def test_all_correct_with_many_guesses_gives_a_large_bound() -> None:
    assert epsilon_lower_bound(200, 200, 1000, DELTA) > 3.0
    assert epsilon_lower_bound(1000, 1000, 1000, 0.0) > epsilon_lower_bound(200, 200, 1000, 0.0)


def test_chance_level_guesses_give_no_bound() -> None:
    assert epsilon_lower_bound(100, 200, 1000, DELTA) == 0.0
    assert epsilon_lower_bound(0, 200, 1000, DELTA) == 0.0
    assert epsilon_lower_bound(108, 200, 1000, DELTA) < 0.05


def test_bound_is_monotone_in_correct_guesses_and_confidence() -> None:
    bounds = [epsilon_lower_bound(v, 200, 1000, DELTA) for v in range(100, 201, 10)]
    assert all(a <= b for a, b in itertools.pairwise(bounds))
    assert bounds[-1] > bounds[0]
    assert epsilon_lower_bound(180, 200, 1000, DELTA, confidence=0.99) < epsilon_lower_bound(
        180, 200, 1000, DELTA, confidence=0.9
    )


def test_delta_weakens_the_bound() -> None:
    assert epsilon_lower_bound(200, 200, 10_000, 1e-3) < epsilon_lower_bound(200, 200, 10_000, 1e-8)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(DataError, match="n_correct"):
        epsilon_lower_bound(11, 10, 100, DELTA)
    with pytest.raises(DataError, match="confidence"):
        epsilon_lower_bound(5, 10, 100, DELTA, confidence=1.0)


def test_guess_counts_use_the_extremes() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    included = np.array([True, True, False, True, False, False])
    assert guess_counts(scores, included, 2, 2) == (4, 4)
    assert guess_counts(scores, included, 3, 3) == (4, 6)  # 3rd highest is out, 3rd lowest in


# --------------------------------------------------------------------------- DP-SGD runs


def _task(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real rows and canaries as [features | label]. Each canary owns an input coordinate that is
    zero everywhere else, so only its own (clipped, noised) gradient moves that weight: the
    strongest input-space canary for a linear model, which makes a broken run easy to catch."""
    rng = np.random.default_rng(seed)
    width = N_FEATURES + N_CANARIES
    real = np.zeros((N_REAL, width + 1), dtype=np.float32)
    real[:, :N_FEATURES] = rng.normal(size=(N_REAL, N_FEATURES))
    real[:, -1] = (real[:, :N_FEATURES] @ rng.normal(size=N_FEATURES) > 0).astype(np.float32)
    canaries = np.zeros((N_CANARIES, width + 1), dtype=np.float32)
    canaries[np.arange(N_CANARIES), N_FEATURES + np.arange(N_CANARIES)] = 1.0
    canaries[:, -1] = 1.0
    return real, canaries


def _dp_sgd(noise_multiplier: float | None, target_epsilon: float, accountant: dict):
    """A train_fn: logistic regression by DP-SGD (Opacus, Poisson sampling); noise calibrated for
    `target_epsilon` when `noise_multiplier` is None. The score is minus the example's loss."""
    from opacus import PrivacyEngine

    def train(rows: np.ndarray):
        torch.manual_seed(0)
        x, y = torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, -1:])
        model = nn.Linear(x.shape[1], 1)
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns about secure RNG and no-noise runs
            engine = PrivacyEngine(accountant="prv")
            if noise_multiplier is None:
                model, optimizer, loader = engine.make_private_with_epsilon(
                    module=model,
                    optimizer=optimizer,
                    data_loader=loader,
                    target_epsilon=target_epsilon,
                    target_delta=DELTA,
                    epochs=EPOCHS,
                    max_grad_norm=1.0,
                )
            else:
                model, optimizer, loader = engine.make_private(
                    module=model,
                    optimizer=optimizer,
                    data_loader=loader,
                    noise_multiplier=noise_multiplier,
                    max_grad_norm=1.0,
                )
            loss_fn = nn.BCEWithLogitsLoss()
            for _ in range(EPOCHS):
                for xb, yb in loader:
                    if len(xb) == 0:
                        continue
                    optimizer.zero_grad()
                    loss_fn(model(xb), yb).backward()
                    optimizer.step()
            if noise_multiplier is None:
                accountant["epsilon"] = float(engine.get_epsilon(DELTA))
        net = model._module

        def score(rows_: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                logits = net(torch.from_numpy(rows_[:, :-1]))
                target = torch.from_numpy(rows_[:, -1:])
                loss = nn.functional.binary_cross_entropy_with_logits(
                    logits, target, reduction="none"
                )
            return -loss.numpy().ravel()

        return score

    return train


def test_correct_dp_sgd_stays_under_its_accountant_epsilon() -> None:
    real, canaries = _task()
    accountant: dict = {}
    result = audit_dp_training(_dp_sgd(None, 2.0, accountant), real, canaries, delta=DELTA, seed=0)
    assert accountant["epsilon"] <= 2.0 + 1e-6
    assert result["n_canaries"] == N_CANARIES
    assert result["n_guesses"] == 200
    assert 0.0 <= result["epsilon_lower_bound"] <= accountant["epsilon"]


def test_dp_sgd_without_noise_is_caught() -> None:
    real, canaries = _task()
    claimed = 1.0
    result = audit_dp_training(_dp_sgd(0.0, claimed, {}), real, canaries, delta=DELTA, seed=0)
    assert result["epsilon_lower_bound"] > claimed
    assert result["accuracy"] > 0.95
