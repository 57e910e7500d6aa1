"""A warm start: the server's initial global model taken from a model directory trained centrally
(e.g. on public data), instead of a random initialisation (`federated.init_model` in fed.yaml,
`fds federated simulate --init-model RUN`).

The directory is read as every model directory is (`fds.io.load_model`: sha256-verified JSON and
safetensors, no pickle, so loading executes no code). It must hold the network the federation
trains: the same preset, latent size and network options (`NETWORK_FIELDS`), no private block or
custom modules, and a codec of the same layout as the sites' shared codec — images of the same
shape and dtype (uint8 images are scaled by the fixed 1/255), tables with the same columns, kinds
and categories. Each mismatch is refused with one line naming it, before any round runs. A table's
column statistics (mean, standard deviation) may differ: the federation keeps the codec pooled
from its sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fds.config import FDSConfig, make_config
from fds.data.codec import Codec
from fds.data.codecs import codec_from_json
from fds.errors import ConfigError, DataError
from fds.io import load_model
from fds.models.trained import LATENT_LOC, LATENT_SCALE_TRIL

# the options that decide the network's shapes and what its outputs mean
NETWORK_FIELDS = (
    "preset",
    "latent_dim",
    "private_dim",
    "architecture",
    "hidden_dims",
    "conv_channels",
    "posterior",
    "likelihood",
    "mixture_components",
)
# a table column's layout; its statistics (center, scale, fill, support) may differ
_COLUMN_LAYOUT = ("name", "kind", "categories", "indicator", "bounded")


@dataclass(frozen=True)
class InitModel:
    """A checked model directory: its path, codec and the network's tensors."""

    path: Path
    codec: Codec
    state: dict[str, torch.Tensor]


def load_init_model(path: str | Path, config: FDSConfig) -> InitModel:
    """Read the model directory at `path` and check it holds the network `config` builds."""
    path = Path(path)
    document, tensors, codec_state, _ = load_model(path)
    if document.get("custom_encoder") or document.get("custom_decoder"):
        raise ConfigError(
            f"federated.init_model {path}: it was trained with a custom encoder or decoder, "
            "which a federation cannot rebuild"
        )
    try:
        theirs = make_config(**document["params"]).resolved()
    except ConfigError as exc:
        raise ConfigError(f"federated.init_model {path}: config.json: {exc}") from None
    for name in NETWORK_FIELDS:
        mine, other = getattr(config, name), getattr(theirs, name)
        if mine != other:
            raise ConfigError(
                f"federated.init_model {path} does not match fed.yaml: {name} is {other!r} "
                f"there, {mine!r} here"
            )
    try:
        codec = codec_from_json(codec_state, source=f"{path}/codec.json")
    except DataError as exc:
        raise ConfigError(f"federated.init_model: {exc}") from None
    if codec.input_kind not in ("images", "table"):
        raise ConfigError(
            f"federated.init_model {path}: a {codec.input_kind} model cannot start a federation"
        )
    for fitted in (LATENT_LOC, LATENT_SCALE_TRIL):  # the code distribution, refitted at the end
        tensors.pop(fitted, None)
    return InitModel(path, codec, tensors)


def check_codec(init: InitModel, codec: Codec) -> None:
    """The init model's codec must encode the sites' data as their shared `codec` does."""
    mine, theirs = _layout(codec), _layout(init.codec)
    if mine == theirs:
        return
    name = next(k for k in dict.fromkeys([*theirs, *mine]) if mine.get(k) != theirs.get(k))
    raise ConfigError(
        f"federated.init_model {init.path}: its codec does not match the sites' data: "
        f"{name} is {_short(theirs.get(name))} there, {_short(mine.get(name))} at the sites"
    )


def load_into(init: InitModel, model: torch.nn.Module) -> None:
    """Load the init model's weights into the freshly built global `model` (same keys, shapes)."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - init.state.keys())
    extra = sorted(init.state.keys() - expected.keys())
    if missing or extra:
        which = f"lacks {missing[0]}" if missing else f"has an extra tensor {extra[0]}"
        raise ConfigError(f"federated.init_model {init.path}: its network {which}")
    for key, tensor in expected.items():
        if tuple(init.state[key].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"federated.init_model {init.path}: tensor {key} has shape "
                f"{tuple(init.state[key].shape)}, the federation's model {tuple(tensor.shape)}"
            )
    model.load_state_dict(init.state)


def _layout(codec: Codec) -> dict[str, Any]:
    """What decides how a row is encoded, without the fitted statistics of a table's columns."""
    state = codec.to_json()
    if codec.input_kind != "table":
        return state
    columns = {c["name"]: c for c in state.pop("columns")}
    for column in columns.values():
        state[f"column {column['name']!r}"] = {k: column.get(k) for k in _COLUMN_LAYOUT}
    return state


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
