"""Reading a checkpoint for `--resume`: a corrupt, truncated, pickled or foreign file is one
ModelFormatError line naming it, never a traceback; a good one restores everything."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fds.errors import ModelFormatError
from fds.training.checkpoint import load_checkpoint, save_checkpoint

LOOP = {"epoch": 1, "batch": 0, "step": 4, "best_val": None, "bad_epochs": 0, "sums": {}}


def _parts(width: int = 3) -> tuple[torch.nn.Module, dict[str, torch.optim.Optimizer]]:
    torch.manual_seed(0)
    model = torch.nn.Linear(width, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, width)).sum().backward()
    optimizer.step()
    return model, {"model": optimizer}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model, optimizers = _parts()
    path = tmp_path / "checkpoints" / "last.safetensors"
    save_checkpoint(path, model, optimizers, LOOP | {"history": [{"epoch": 1}]})
    return path


def _rewrite(path: Path, meta=None, tensors=None) -> None:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        content = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    if meta:
        meta(metadata)
    if tensors:
        tensors(content)
    save_file(content, str(path), metadata=metadata)


def _loop(**changes) -> Callable[[dict], None]:
    return lambda meta: meta.update(loop=json.dumps(json.loads(meta["loop"]) | changes))


CORRUPT: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:150]),
    "pickle": lambda p: p.write_bytes(pickle.dumps({"model.weight": [1.0]})),
    "no-loop": lambda p: _rewrite(p, meta=lambda m: m.pop("loop")),
    "loop-not-json": lambda p: _rewrite(p, meta=lambda m: m.update(loop="{epoch")),
    "loop-a-list": lambda p: _rewrite(p, meta=lambda m: m.update(loop="[]")),
    "epoch-negative": lambda p: _rewrite(p, meta=_loop(epoch=-1)),
    "step-text": lambda p: _rewrite(p, meta=_loop(step="4")),
    "history-garbage": lambda p: _rewrite(p, meta=_loop(history=[1, 2])),
    "groups-missing": lambda p: _rewrite(p, meta=lambda m: m.update(param_groups="{}")),
    "groups-wrong": lambda p: _rewrite(
        p, meta=lambda m: m.update(param_groups=json.dumps({"model": [{"params": [0]}]}))
    ),
    "nan-weights": lambda p: _rewrite(p, tensors=lambda t: t["model.weight"].fill_(torch.nan)),
    "no-rng": lambda p: _rewrite(p, tensors=lambda t: t.pop("rng.torch")),
    "rng-short": lambda p: _rewrite(
        p, tensors=lambda t: t.update({"rng.torch": t["rng.torch"][:10].clone()})
    ),
    "optimizer-key-garbage": lambda p: _rewrite(
        p, tensors=lambda t: t.update({"optim.model.x": torch.zeros(1)})
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_checkpoint_is_one_line_naming_it(checkpoint: Path, case: str) -> None:
    CORRUPT[case](checkpoint)
    model, optimizers = _parts()
    with pytest.raises(ModelFormatError) as info:
        load_checkpoint(checkpoint, model, optimizers)
    message = str(info.value)
    assert "\n" not in message and str(checkpoint) in message, message


def test_a_checkpoint_of_another_model_is_refused(checkpoint: Path) -> None:
    model, optimizers = _parts(width=5)
    with pytest.raises(ModelFormatError, match="does not fit this run's model"):
        load_checkpoint(checkpoint, model, optimizers)


def test_a_dp_resume_needs_the_dp_state(checkpoint: Path) -> None:
    model, optimizers = _parts()
    generator = torch.Generator()
    with pytest.raises(ModelFormatError, match="'loop' metadata: dp"):
        load_checkpoint(checkpoint, model, optimizers, {"dp_noise": generator})


def test_a_good_checkpoint_restores_weights_and_loop(checkpoint: Path) -> None:
    saved, _ = _parts()
    model, optimizers = _parts(width=3)
    with torch.no_grad():
        model.weight.zero_()
    loop = load_checkpoint(checkpoint, model, optimizers)
    assert torch.equal(model.weight, saved.weight)
    assert loop == LOOP | {"history": [{"epoch": 1}]}
