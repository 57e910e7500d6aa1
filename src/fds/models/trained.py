"""A trained model as a model directory (`fds.io`): config.json's document and the tensors beside
the network's weights, written the same way by the estimator and by a federated run's server,
which has no estimator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fds.config import FDSConfig
from fds.data.codec import Codec
from fds.io import save_model

# the fitted code distribution (what `sample` draws from), saved beside the network's weights
LATENT_LOC, LATENT_SCALE_TRIL = "fitted.latent_loc", "fitted.latent_scale_tril"


def model_tensors(
    model: nn.Module, latent_loc: torch.Tensor, latent_scale_tril: torch.Tensor
) -> dict[str, torch.Tensor]:
    """What weights.safetensors holds: the network's state and the fitted code distribution."""
    return dict(model.state_dict()) | {LATENT_LOC: latent_loc, LATENT_SCALE_TRIL: latent_scale_tril}


def save_trained(
    path: str | Path,
    config: FDSConfig,
    codec: Codec,
    tensors: dict[str, torch.Tensor],
    *,
    n_features_in: int,
    feature_names_in: list[str] | None,
    epochs_trained: int,
    sensitive: list[dict[str, Any]],
    privacy: dict[str, Any] | None,
    custom_encoder: bool = False,
    custom_decoder: bool = False,
) -> Path:
    """Write the model directory: config.json holds the resolved parameters, whether the user
    supplied the encoder or decoder (which loading then asks for), and the fitted attributes."""
    document = {
        "params": config.model_dump(mode="json"),
        "custom_encoder": custom_encoder,
        "custom_decoder": custom_decoder,
        "fitted": {
            "n_features_in": n_features_in,
            "feature_names_in": feature_names_in,
            "epochs_trained": epochs_trained,
            "sensitive": sensitive,
        },
    }
    return save_model(path, document, tensors, codec.to_json(), privacy)
