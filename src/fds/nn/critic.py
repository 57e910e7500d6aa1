"""Critics that tell real data from decoded data (the discriminator of a VAE-GAN).

Every layer is spectrally normalised (Miyato et al. 2018, "Spectral Normalization for GANs"):
the critic stays about 1-Lipschitz, which keeps its gradient to the decoder bounded and the
adversarial game stable without a gradient penalty's second backward pass.

`MLPCritic` packs `pac` rows into one input, as PacGAN (Lin et al. 2018) and CTGAN (Xu et al.
2019) do: judging rows in groups lets the critic see a lack of variety (mode collapse) that no
single row shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from fds.nn.conv import usable_layers

LEAK = 0.2  # LeakyReLU slope of DCGAN's and CTGAN's critics


def pack(rows: torch.Tensor, pac: int) -> torch.Tensor:
    """[n, d] → [ceil(n / pac), pac·d]; a batch not divisible by `pac` fills its last pack
    with its first rows again, so every row is judged and any batch size works."""
    if pac == 1:
        return rows
    n = len(rows)
    groups = -(-n // pac)
    index = torch.arange(groups * pac, device=rows.device) % n
    return rows[index].reshape(groups, pac * rows.shape[1])


class MLPCritic(nn.Module):
    """Packed rows → spectrally normalised Linear/LeakyReLU stack → one logit per pack."""

    def __init__(self, width: int, hidden: Sequence[int], pac: int = 1) -> None:
        super().__init__()
        self.pac = pac
        layers: list[nn.Module] = []
        n_in = width * pac
        for h in hidden:
            layers += [spectral_norm(nn.Linear(n_in, h)), nn.LeakyReLU(LEAK)]
            n_in = h
        layers.append(spectral_norm(nn.Linear(n_in, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.net(pack(rows, self.pac))[:, 0]


class ConvCritic(nn.Module):
    """Flat pixel rows → (C,H,W) → stride-2 spectrally normalised convolutions → one logit
    (DCGAN's discriminator, Radford et al. 2016, with spectral norm instead of batch norm)."""

    def __init__(self, chw: tuple[int, int, int], channels: Sequence[int]) -> None:
        super().__init__()
        self.chw = chw
        c, h, w = chw
        layers: list[nn.Module] = []
        for out in channels[: usable_layers(h, w, len(channels))]:
            layers += [spectral_norm(nn.Conv2d(c, out, 4, stride=2, padding=1)), nn.LeakyReLU(LEAK)]
            c = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *chw)).shape[1]
        self.head = spectral_norm(nn.Linear(n_flat, 1))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(rows.view(-1, *self.chw)))[:, 0]
