"""Multimodal fusion models by name, over one `Modality` (networks + likelihood) per kind."""

from fds.config import FDSConfig
from fds.data.multimodal import MultimodalCodec
from fds.errors import ConfigError
from fds.models.fusion.base import Batch, FusionModel
from fds.models.fusion.mmvae_plus import MixturePlus
from fds.models.fusion.modalities import build_modalities
from fds.models.fusion.moe import MixtureOfExperts
from fds.models.fusion.mopoe import MixtureOfProducts
from fds.models.fusion.poe import ProductOfExperts

__all__ = ["FUSIONS", "Batch", "FusionModel", "build_fusion"]

FUSIONS: dict[str, type[FusionModel]] = {
    model.name: model
    for model in (ProductOfExperts, MixtureOfExperts, MixtureOfProducts, MixturePlus)
}


def build_fusion(codec: MultimodalCodec, config: FDSConfig) -> FusionModel:
    """The fusion model `config.fusion` names, with networks for every modality of `codec`."""
    kind = FUSIONS.get(config.fusion)
    if kind is None:
        raise ConfigError(f"unknown fusion {config.fusion!r}; valid: {', '.join(FUSIONS)}")
    specific = config.modality_specific_dim if kind.specific else 0
    n_params = 2 * (config.latent_dim + specific)
    modalities = build_modalities(
        codec, config, n_params, config.latent_dim + specific, config.latent_dim
    )
    return kind(modalities, config.latent_dim, specific, config.kl or 0.0)
