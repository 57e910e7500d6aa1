"""benchmarks/multimodal_image.py, the gate between "budget" and "fusion" for coherence to images:
its epoch curve resumes one run to each count, which must give the weights of a run trained
straight to that count, and its quick run reports one row per model and count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm

BENCHMARKS = Path(__file__).parents[3] / "benchmarks"
TINY = {"latent_dim": 3, "hidden_dims": [16], "batch_size": 32, "val_fraction": 0.0}


def test_curve_resumed_to_each_count_matches_a_run_of_that_many_epochs(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from multimodal_image import curve

    images = make_shapes_mm(64, seed=0)[0]["image"]
    make = partial(FDS, preset="vae", architecture="conv", verbose=False, **TINY)
    steps = [(epochs, model.transform(images)) for epochs, _, model in curve(make, images, [1, 3])]
    assert [epochs for epochs, _ in steps] == [1, 3]
    straight = make(epochs=3).fit(images).transform(images)
    np.testing.assert_allclose(steps[-1][1], straight, atol=1e-6)
    assert not np.allclose(steps[0][1], straight)  # the counts are different models


@pytest.mark.slow
def test_quick_run_reports_every_model_at_every_count():
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "multimodal_image.py", "--quick", "--fusion", "moe"]
    out = subprocess.run(cmd, cwd=BENCHMARKS, env=env, capture_output=True, text=True, check=True)
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    rows = {(r["model"], r["epochs"]): r for r in payload["results"]}
    assert set(rows) == {(m, e) for m in ("vae conv", "vae what_where", "moe") for e in (1, 2)}
    for row in rows.values():
        for label in ("shape", "scale"):
            assert 0.0 <= row[f"image_to_image_{label}"] <= 1.0
    assert rows["vae conv", 2]["cpu_seconds"] >= rows["vae conv", 1]["cpu_seconds"]
    assert 0.0 <= rows["moe", 2]["text_to_image_shape"] <= 1.0
