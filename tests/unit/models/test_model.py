"""The model's loss terms as the trainer and DP-SGD consume them."""

import pytest
import torch

from fds.config import make_config
from fds.data.codec import Block
from fds.errors import ConfigError
from fds.models import build_model


def test_per_example_loss_matches_the_batch_mean():
    """DP-SGD clips each example's gradient, so the loss must exist per example."""
    config = make_config(preset="vae", free_bits=0.0, latent_dim=3, hidden_dims=(8,)).resolved()
    model = build_model(config, [Block("real", 0, 5, "x")], None)
    x = torch.randn(16, 5)
    torch.manual_seed(0)
    per_example = model.loss_terms(x, dataset_size=16, per_example=True)
    torch.manual_seed(0)
    batch = model.loss_terms(x, dataset_size=16)
    assert per_example["loss"].shape == (16,)
    assert torch.allclose(per_example["loss"].mean(), batch["loss"])


def test_batch_coupled_terms_have_no_per_example_loss():
    config = make_config(preset="beta_tcvae", latent_dim=3, hidden_dims=(8,)).resolved()
    model = build_model(config, [Block("real", 0, 5, "x")], None)
    with pytest.raises(ConfigError, match="tc couples the examples"):
        model.loss_terms(torch.randn(4, 5), dataset_size=4, per_example=True)


def test_the_model_says_whether_its_encoder_is_convolutional():
    """The report names the network from this, without reaching into fds.nn."""
    blocks = [Block("binary", 0, 64, "pixels")]
    conv = build_model(
        make_config(architecture="conv", conv_channels=[4, 4]).resolved(), blocks, (1, 8, 8)
    )
    mlp = build_model(make_config(architecture="mlp").resolved(), blocks, (1, 8, 8))
    assert conv.convolutional and not mlp.convolutional
