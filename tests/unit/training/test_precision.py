"""bfloat16 network passes (fds.runtime.precision): chosen only where they pay and are safe, the
weights and everything read back stay float32, and a run resumes bit for bit in its format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds import FDS
from fds.errors import ConfigError
from fds.runtime import precision
from fds.runtime.precision import choose_precision
from fds.runtime.threads import SMALL_WORK
from fds.training import trainer
from tests.conftest import FAST
from tests.interrupting import fit_stopped_at

LARGE_IMAGE_MLP = {"image": True, "mlp": True, "private": False, "work": SMALL_WORK}


@pytest.mark.parametrize("native", [True, False])
def test_auto_picks_bfloat16_only_for_large_image_mlps_on_a_native_cpu(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    chosen = "bfloat16" if native else "float32"
    assert choose_precision("auto", **LARGE_IMAGE_MLP) == chosen
    for change in ({"image": False}, {"mlp": False}, {"private": True}, {"work": SMALL_WORK - 1}):
        assert choose_precision("auto", **(LARGE_IMAGE_MLP | change)) == "float32", change
    small_table = {"image": False, "mlp": True, "private": False, "work": 1}
    assert choose_precision("bfloat16", **small_table) == "bfloat16"  # an explicit format wins
    assert choose_precision("float32", **LARGE_IMAGE_MLP) == "float32"


def test_bfloat16_is_refused_under_dp() -> None:
    with pytest.raises(ConfigError, match="DP-SGD"):
        choose_precision("bfloat16", **(LARGE_IMAGE_MLP | {"private": True}))


def test_a_bfloat16_run_keeps_float32_weights_and_outputs(digits: np.ndarray) -> None:
    params = FAST | {"seed": 3}
    fp32 = FDS(**params, precision="float32").fit(digits)
    bf16 = FDS(**params, precision="bfloat16").fit(digits)
    assert all(p.dtype == torch.float32 for p in bf16.model_.parameters())
    assert bf16.model_.compute_dtype is None  # inference after fit runs in float32
    assert bf16.transform(digits[:5]).dtype == np.float32
    assert np.isfinite(bf16.history_[-1]["train_loss"])
    changed = [
        not torch.equal(a, b)
        for a, b in zip(bf16.model_.parameters(), fp32.model_.parameters(), strict=True)
    ]
    assert any(changed)  # the passes did run in bfloat16


@pytest.mark.parametrize("setting", ["bfloat16", "auto"])
def test_a_bfloat16_run_cut_mid_epoch_resumes_bit_for_bit(
    setting: str, digits: np.ndarray, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `auto`, the resumed run keeps its checkpoint's format even where the choice would now
    be float32 (another machine)."""
    params = FAST | {"epochs": 3, "batch_size": 32, "seed": 5, "precision": setting}
    monkeypatch.setattr(trainer, "choose_precision", lambda *a, **k: "bfloat16")
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = FDS(**params).fit(digits, run_dir=tmp_path / "ref")
    # mid second epoch (11 steps per epoch)
    fit_stopped_at(15, lambda: FDS(**params).fit(digits, run_dir=tmp_path / "cut"))
    if setting == "auto":
        monkeypatch.setattr(trainer, "choose_precision", lambda *a, **k: "float32")
    resumed = FDS(**params).fit(digits, run_dir=tmp_path / "cut", resume=True)
    for a, b in zip(resumed.model_.parameters(), reference.model_.parameters(), strict=True):
        assert torch.equal(a, b)
