"""Checkpoints as one safetensors file (tensors + JSON metadata): no pickle, written atomically.

A checkpoint holds the model, the optimizers' states, torch's RNG state and the loop position,
which is everything `--resume` needs to continue bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fds.errors import ModelFormatError
from fds.rundir import atomic_write


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
) -> None:
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    groups = {}
    for name, opt in optimizers.items():
        flat, groups[name] = _flatten_optimizer(f"optim.{name}", opt.state_dict())
        tensors |= flat
    tensors["rng.torch"] = torch.get_rng_state()
    for name, generator in (generators or {}).items():
        tensors[f"rng.{name}"] = generator.get_state()
    meta = {"loop": json.dumps(loop_state), "param_groups": json.dumps(groups)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Restore model, optimizers, torch's RNG and `generators` in place; return the loop state."""
    if not path.is_file():
        raise ModelFormatError(f"no checkpoint to resume from: {path} does not exist")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    groups = json.loads(meta["param_groups"])
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(f"optim.{name}", tensors, groups[name]))
    torch.set_rng_state(tensors["rng.torch"])
    for name, generator in (generators or {}).items():
        generator.set_state(tensors[f"rng.{name}"])
    return json.loads(meta["loop"])
