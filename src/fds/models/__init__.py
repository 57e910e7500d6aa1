"""The model: an autoencoder that sums the registered loss terms, and its builder."""

from fds.models.autoencoder import FactorizedAutoencoder
from fds.models.build import build_model
from fds.models.split_encoder import SplitEncoder, column_slots

__all__ = ["FactorizedAutoencoder", "SplitEncoder", "build_model", "column_slots"]
