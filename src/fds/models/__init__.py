"""The model: an autoencoder that sums the registered loss terms, and its builder."""

from fds.models.autoencoder import FactorizedAutoencoder
from fds.models.build import build_model

__all__ = ["FactorizedAutoencoder", "build_model"]
