"""Checkpoints as one safetensors file (tensors + JSON metadata): no pickle, written atomically.

A checkpoint holds the model, the optimizers' states, torch's RNG state, the loop position and the
best validation epoch's weights so far, which is everything `--resume` needs to continue bit for
bit (and to restore the same best weights at the end).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fds.errors import ModelFormatError
from fds.rundir import atomic_write
from fds.training.ema import WeightAverage


def _flatten_optimizer(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).clone()
    return tensors, state["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    loop_state: dict[str, Any],
    generators: dict[str, torch.Generator] | None = None,
    best: dict[str, torch.Tensor] | None = None,
    ema: dict[str, torch.Tensor] | None = None,
) -> None:
    """`best`: the best validation epoch's state_dict, stored beside the current one; `ema`:
    the weights' moving average under its own names (WeightAverage.state)."""
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors |= {f"best.{k}": v.contiguous() for k, v in (best or {}).items()}
    tensors |= {k: v.detach().clone().contiguous() for k, v in (ema or {}).items()}
    groups = {}
    for name, opt in optimizers.items():
        flat, groups[name] = _flatten_optimizer(f"optim.{name}", opt.state_dict())
        tensors |= flat
    tensors["rng.torch"] = torch.get_rng_state()
    for name, generator in (generators or {}).items():
        tensors[f"rng.{name}"] = generator.get_state()
    meta = {"loop": json.dumps(loop_state), "param_groups": json.dumps(groups)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


# the loop position the trainer writes, with the JSON types a resume relies on
_LOOP_FIELDS = {"epoch": int, "batch": int, "step": int, "bad_epochs": int, "sums": dict}


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator] | None = None,
    ema: WeightAverage | None = None,
) -> dict[str, Any]:
    """Restore model, optimizers, torch's RNG, `generators` and the weights' moving average
    `ema` in place; return the loop state,
    with the best epoch's weights under "best_state" when the checkpoint holds them.

    A corrupt, truncated or foreign file (a pickle, another model's checkpoint) is refused with
    one ModelFormatError line naming it.
    """
    if not path.is_file():
        raise ModelFormatError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise ModelFormatError(f"{path} is not a readable checkpoint: {exc}") from None
    loop, groups = (_metadata_json(meta, key, path) for key in ("loop", "param_groups"))
    _check_loop(loop, path, dp=bool(generators))
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFormatError(f"{path} holds NaN or inf in {name!r}: it cannot be resumed")
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for name, opt in optimizers.items():
            opt.load_state_dict(_unflatten_optimizer(f"optim.{name}", tensors, groups[name]))
        torch.set_rng_state(tensors["rng.torch"])
        for name, generator in (generators or {}).items():
            generator.set_state(tensors[f"rng.{name}"])
        if ema is not None:
            ema.load(tensors)
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        if best:
            loop["best_state"] = _checked_best(best, model)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = (
            f"{exc.args[0]!r} is missing"
            if isinstance(exc, KeyError)
            else " ".join(str(exc).split())[:200] or type(exc).__name__
        )
        raise ModelFormatError(f"{path} does not fit this run's model: {reason}") from None
    return loop


def _checked_best(best: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The best weights, if they have exactly the model's names and shapes (ValueError if not)."""
    current = model.state_dict()
    if set(best) != set(current) or any(best[k].shape != v.shape for k, v in current.items()):
        raise ValueError("its best weights do not match the model's")
    return best


def _metadata_json(meta: dict[str, str], key: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(meta[key])
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise ModelFormatError(f"{path} has missing or invalid {key!r} metadata") from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path} has invalid {key!r} metadata: not a JSON object")
    return value


def _check_loop(loop: dict[str, Any], path: Path, dp: bool) -> None:
    """The loop position must be what the trainer wrote: counters ≥ 0, the epoch history, and for
    a DP run (it has generators) the DP state with its key."""
    for key, kind in _LOOP_FIELDS.items():
        value = loop.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise ModelFormatError(f"{path} has invalid 'loop' metadata: {key}")
    history = loop.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ModelFormatError(f"{path} has invalid 'loop' metadata: history")
    if not isinstance(loop.get("best_val"), int | float | None):
        raise ModelFormatError(f"{path} has invalid 'loop' metadata: best_val")
    best_epoch = loop.get("best_epoch")
    if best_epoch is not None and (not isinstance(best_epoch, int) or best_epoch < 1):
        raise ModelFormatError(f"{path} has invalid 'loop' metadata: best_epoch")
    if dp and not (
        isinstance(loop.get("dp"), dict) and isinstance(loop["dp"].get("key"), int | None)
    ):
        raise ModelFormatError(f"{path} has invalid 'loop' metadata: dp")
