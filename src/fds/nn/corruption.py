"""Input corruption for denoising autoencoders: the model sees a damaged x and must rebuild the clean one."""

from __future__ import annotations

import torch


def corrupt(x: torch.Tensor, kind: str | None, level: float) -> torch.Tensor:
    """Gaussian noise (σ = level), masking (each value zeroed with probability level), or
    salt-and-pepper (each value set to 0 or 1 with probability level)."""
    if kind is None or level <= 0:
        return x
    if kind == "gaussian":
        return x + level * torch.randn_like(x)
    hit = torch.rand_like(x) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    if kind == "salt_pepper":
        salt = (torch.rand_like(x) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)
    raise ValueError(f"unknown corruption {kind!r}")
