"""Search spaces of `fds tune`: YAML in (a file, or the preset's default from tune_spaces.yaml),
Optuna suggestions out.

A space maps FDS options to a distribution (`{type: int|float|categorical, …}`) or a fixed value.
Every name and every distribution is checked when the space is loaded, so a typo fails before the
first trial trains, naming the key.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from fds.config import FDSConfig, read_yaml_mapping
from fds.errors import ConfigError

__all__ = ["default_space", "load_space", "suggest"]

_TYPES = {"int": ("low", "high"), "float": ("low", "high"), "categorical": ("choices",)}
_OPTIONAL = {"log", "step"}
# Options a trial never takes from the space: they say what and where, not how well.
_NOT_SEARCHABLE = {"preset", "sensitive", "seed", "privacy", "columns", "bounds", "categories"}


def default_space(preset: str) -> dict[str, Any]:
    """The preset's default space: tune_spaces.yaml's `common` section updated by its own."""
    spaces = yaml.safe_load(files("fds.workflows").joinpath("tune_spaces.yaml").read_text())
    if preset not in spaces:
        known = ", ".join(k for k in spaces if k != "common")
        raise ConfigError(f"no default search space for preset {preset!r} (known: {known})")
    return check_space(spaces["common"] | (spaces[preset] or {}), "the default space")


def load_space(space: str | Path | dict[str, Any] | None, preset: str) -> dict[str, Any]:
    """The space to search: a YAML file, a mapping, or (None) the preset's default."""
    if space is None:
        return default_space(preset)
    if isinstance(space, dict):
        return check_space(space, "the search space")
    return check_space(read_yaml_mapping(Path(space)), str(space))


def check_space(space: Any, where: str) -> dict[str, Any]:
    """`space` with every key an FDS option and every distribution well formed."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: a search space is a non-empty mapping of option → range")
    for name, spec in space.items():
        if name not in FDSConfig.model_fields or name in _NOT_SEARCHABLE:
            raise ConfigError(f"{where}: {name!r} is not an option fds tune can search")
        if isinstance(spec, dict):
            _check_distribution(name, spec, where)
    return dict(space)


def _check_distribution(name: str, spec: dict[str, Any], where: str) -> None:
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigError(f"{where}: {name}.type must be int, float or categorical, got {kind!r}")
    needed, allowed = _TYPES[kind], set(_TYPES[kind]) | _OPTIONAL | {"type"}
    missing = [key for key in needed if key not in spec]
    extra = sorted(set(spec) - allowed)
    if missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"unknown key {', '.join(extra)}"
        raise ConfigError(f"{where}: {name} ({kind}): {what}")
    if kind == "categorical":
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ConfigError(f"{where}: {name}.choices must be a non-empty list")
        return
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: {name}.low and .high must be numbers")
    if not low <= high:
        raise ConfigError(f"{where}: {name}: low ({low}) must not exceed high ({high})")
    if spec.get("log") and low <= 0:
        raise ConfigError(f"{where}: {name}: a log scale needs low > 0, got {low}")


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One trial's options: a suggestion per distribution, fixed values as they are. Lists in
    `choices` (e.g. hidden_dims) are offered to Optuna as their YAML text, which its storage
    can hold, and given to the trial as lists."""
    chosen: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(spec, dict):
            chosen[name] = spec
        elif spec["type"] == "int":
            chosen[name] = trial.suggest_int(
                name,
                spec["low"],
                spec["high"],
                step=spec.get("step", 1),
                log=spec.get("log", False),
            )
        elif spec["type"] == "float":
            chosen[name] = trial.suggest_float(
                name, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
        else:
            shown = [_text(choice) for choice in spec["choices"]]
            picked = trial.suggest_categorical(name, shown)
            chosen[name] = spec["choices"][shown.index(picked)]
    return chosen


def _text(value: Any) -> str | int | float | bool | None:
    """A categorical choice Optuna can store: scalars as they are, lists as flow-style YAML."""
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return value


def chosen_values(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's Optuna params as the options it trained with (list choices back from
    their YAML text)."""
    values = {}
    for name, value in params.items():
        spec = space.get(name)
        if isinstance(spec, dict) and spec["type"] == "categorical":
            shown = [_text(choice) for choice in spec["choices"]]
            value = spec["choices"][shown.index(value)] if value in shown else value
        values[name] = value
    return values
