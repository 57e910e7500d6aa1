"""The conv networks: any image from 16×16 to 128×128, square or not, 1 or 3 channels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds import FDS
from fds.nn.conv import ConvDecoder, ConvEncoder

SIZES = [(16, 16), (16, 24), (20, 20), (28, 28), (32, 32), (48, 64), (100, 36), (128, 128)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_encoder_and_decoder_shapes(height: int, width: int, channels: int) -> None:
    chw = (channels, height, width)
    encoder = ConvEncoder(chw, (8, 8, 16, 16), n_out=6)
    decoder = ConvDecoder(3, chw, (8, 8, 16, 16), params_per_pixel=2)
    x = torch.rand(5, channels * height * width)
    assert encoder(x).shape == (5, 6)
    assert decoder(torch.randn(5, 3)).shape == (5, 2 * channels * height * width)


def _squares(n: int, height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """One bright square per image at a random place, in a random colour."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, height, width, channels), dtype=np.uint8)
    for image in images:
        top, left = rng.integers(0, height - 6), rng.integers(0, width - 6)
        image[top : top + 6, left : left + 6] = rng.integers(128, 256, size=channels)
    return images if channels == 3 else images[..., 0]


@pytest.mark.parametrize(("height", "width", "channels"), [(16, 24, 1), (24, 20, 3)])
def test_a_conv_vae_reconstructs_better_than_the_mean_image(
    height: int, width: int, channels: int
) -> None:
    """Better than the best constant guess: the codes carry where the square is."""
    train = _squares(1024, height, width, channels, seed=0)
    test = _squares(256, height, width, channels, seed=1)
    model = FDS(
        preset="vae", architecture="conv", latent_dim=4, epochs=8, verbose=False, seed=0
    ).fit(train)
    pixels = test.astype(np.float32) / 255
    mean_image_mse = float(((pixels - train.astype(np.float32).mean(0) / 255) ** 2).mean())
    assert model.reconstruction_mse(test) < 0.7 * mean_image_mse
