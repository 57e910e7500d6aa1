"""The gradient reversal layer (Ganin & Lempitsky 2015): identity forward, negated gradient back."""

from __future__ import annotations

from typing import Any

import torch


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient multiplied by −`scale` backward: the head below it learns to
    predict while everything above it learns to make the prediction fail."""
    return _Reverse.apply(x, scale)
