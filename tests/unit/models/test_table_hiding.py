"""Hiding by construction on tables: the `fds` public encoder never sees the sensitive columns,
so its codes cannot change when only those change; the model still saves, loads, resumes and
trains under DP-SGD."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.models import SplitEncoder
from tests.conftest import FAST

KEY = FAST | {"preset": "fds", "sensitive": ("sex",), "latent_dim": 4}
BENCHMARKS = Path(__file__).parents[3] / "benchmarks"


def _flip_sex(table: pd.DataFrame) -> pd.DataFrame:
    flipped = table["sex"].map({"female": "male", "male": "female"})
    return table.assign(sex=flipped.astype(table["sex"].dtype))


def test_public_block_is_exactly_invariant_to_the_sensitive_column(census):
    model = FDS(**KEY).fit(census)
    assert isinstance(model.model_.encoder, SplitEncoder)
    flipped = _flip_sex(census)
    np.testing.assert_array_equal(
        model.transform(census, part="public"), model.transform(flipped, part="public")
    )
    assert not np.allclose(
        model.transform(census, part="private"), model.transform(flipped, part="private")
    )


def test_public_input_all_lets_the_public_encoder_see_the_column(census):
    model = FDS(**KEY, public_input="all").fit(census)
    assert not isinstance(model.model_.encoder, SplitEncoder)
    public = model.transform(census, part="public")
    assert not np.allclose(public, model.transform(_flip_sex(census), part="public"))


def test_private_input_sensitive_makes_the_key_a_function_of_the_column(census):
    model = FDS(**KEY, private_input="sensitive").fit(census)
    private = model.transform(census, part="private")
    for value in ("female", "male"):
        rows = private[(census["sex"] == value).to_numpy()]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), atol=1e-6)


def test_split_model_round_trips_and_resumes(census, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = FDS(**KEY).fit(census, run_dir=run)
    model.save(tmp_path / "model")
    loaded = FDS.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(census), model.transform(census))
    resumed = FDS(**KEY).fit(census, run_dir=run, resume=True)
    np.testing.assert_array_equal(resumed.transform(census), model.transform(census))


def test_split_model_trains_under_dp(census):
    table = census[["age", "income", "sex", "married"]]
    declared = {
        "bounds": {"age": [18, 90], "income": [0, 200_000]},
        "categories": {"sex": ["female", "male"], "married": [False, True]},
    }
    model = FDS(**KEY, independence=0.0, privacy={"epsilon": 2.0}, **declared).fit(table)
    assert isinstance(model.model_.encoder, SplitEncoder)
    assert 0 < model.privacy_["epsilon"] <= 2.02
    np.testing.assert_array_equal(
        model.transform(table, part="public"), model.transform(_flip_sex(table), part="public")
    )


@pytest.mark.slow
def test_table_benchmark_quick_run_reports_goals_and_defects():
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "privacy_utility.py", "--tables", "--quick", "--seeds", "0"]
    cmd += ["--datasets", "census", "--models", "fds,fds_given"]
    out = subprocess.run(cmd, cwd=BENCHMARKS, env=env, capture_output=True, text=True, check=True)
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    goals = payload["tables"]["census"]["goals"]["fds"]
    assert set(payload["tables"]["census"]["goals"]) == {"fds", "fds_given"}
    assert set(goals["checks"]) == {"vs_drop", "necessary", "utility", "recon"}
    assert isinstance(payload["defect"], bool)


def test_front_counts_the_conditioned_key_in_the_fds_front(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from privacy_front import tasks, verdicts

    methods = {(name, method) for name, method, _, _ in tasks(["census", "shapes"], [0], False)}
    assert ("census", "fds_given") in methods
    assert ("shapes", "fds_given") not in methods  # images name no target column
    assert ("shapes", "fds_step") in methods and ("census", "fds_step") not in methods
    points = [
        {"method": "fds", "weight": 0.0, "utility": 0.9, "leakage": 0.70},
        {"method": "fds_given", "weight": 30.0, "utility": 0.9, "leakage": 0.60},
        {"method": "vae_without", "weight": None, "utility": 0.9, "leakage": 0.65},
    ]
    (verdict,) = verdicts(points)
    assert verdict["fds_at_or_below"] and verdict["fds_leakage"] == 0.60
    (verdict,) = verdicts(points[:1] + points[2:])
    assert not verdict["fds_at_or_below"]
