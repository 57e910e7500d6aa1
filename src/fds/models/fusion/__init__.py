"""Multimodal fusion models by name, over one `Modality` (networks + likelihood) per kind."""

from collections.abc import Sequence

from fds.config import FDSConfig
from fds.data.multimodal import MultimodalCodec
from fds.errors import ConfigError
from fds.models.fusion.base import Batch, FusionModel
from fds.models.fusion.key import FusionKey
from fds.models.fusion.mmvae_plus import MixturePlus
from fds.models.fusion.modalities import build_modalities
from fds.models.fusion.moe import MixtureOfExperts
from fds.models.fusion.mopoe import MixtureOfProducts
from fds.models.fusion.poe import ProductOfExperts
from fds.models.split_encoder import column_slots
from fds.objectives.attributes import AttributeSpec

__all__ = ["FUSIONS", "Batch", "FusionModel", "build_fusion", "sensitive_table_slots"]

FUSIONS: dict[str, type[FusionModel]] = {
    model.name: model
    for model in (ProductOfExperts, MixtureOfExperts, MixtureOfProducts, MixturePlus)
}


def build_fusion(
    codec: MultimodalCodec, config: FDSConfig, specs: Sequence[AttributeSpec] = ()
) -> FusionModel:
    """The fusion model `config.fusion` names, with networks for every modality of `codec`.

    `specs` (the sensitive attributes) with `config.private_dim`: a model with a key, whose
    last `private_dim` latents are encoded from the sensitive values alone and whose table
    encoder leaves the sensitive columns out (fds.models.fusion.key)."""
    kind = FUSIONS.get(config.fusion)
    if kind is None:
        raise ConfigError(f"unknown fusion {config.fusion!r}; valid: {', '.join(FUSIONS)}")
    specific = config.modality_specific_dim if kind.specific else 0
    private = (config.private_dim or 0) if specs else 0
    n_params = 2 * (config.latent_dim - private + specific)
    hidden = sensitive_table_slots(codec, config.sensitive) if private else []
    modalities = build_modalities(
        codec, config, n_params, config.latent_dim + specific, config.latent_dim, hidden
    )
    key = FusionKey(specs, private, list(config.hidden_dims)) if private else None
    mmd = (config.mmd or 0.0) if private else 0.0
    return kind(modalities, config.latent_dim, specific, config.kl or 0.0, key, mmd)


def sensitive_table_slots(codec: MultimodalCodec, names: Sequence[str]) -> list[int]:
    """The encoded slots of the table modality's columns among `names` (none without a table,
    or when the sensitive values were given beside the data)."""
    table = codec.codecs.get("table")
    if table is None:
        return []
    return column_slots(table.blocks, table.part_widths(), names)
