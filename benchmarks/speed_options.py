"""Which training-speed options pay on CPU (issue 19, part 3), measured on the bare reference loop.

Each variant trains the core benchmark's model (MLP VAE 784-512-512-16, Bernoulli, batch 128, one
thread) or, for channels-last, the same VAE on FDS's conv networks (src/fds/nn/conv.py, channels
32-32-64-64), interleaved per repeat, and reports steady-state examples/s (first epoch skipped)
and the ratio to the plain loop of the same repeat:

  base           Adam (torch's default per-tensor loop), data already a float tensor
  foreach        Adam(foreach=True)
  fused          Adam(fused=True)                                   ← FDS's default now
  numpy_batches  fused + each batch gathered from a numpy array and converted (FDS before)
  batch256       fused, batch 256 and lr × √2 (a different training: fewer, larger steps)
  bf16           fused + torch.autocast("cpu", bfloat16) (needs avx512_bf16 / AMX to pay)
  compile        fused + torch.compile of the loss (inductor; compile seconds reported apart)
  conv / conv_channels_last   the conv VAE, fused, NCHW vs channels-last memory format

    PYTHONPATH=src .venv/bin/python benchmarks/speed_options.py [--repeats 3] [--variants a,b]
        [--quick]

Prints one line per run, a table of medians, then one JSON line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    BATCH,
    LATENT_DIM,
    LR,
    BareVAE,
    emit_json,
    environment,
    load_fashion,
    median,
    print_table,
    random_images,
)
from torch import nn

from fds.nn.conv import ConvDecoder, ConvEncoder

VARIANTS = (
    "base",
    "foreach",
    "fused",
    "numpy_batches",
    "batch256",
    "bf16",
    "compile",
    "conv",
    "conv_channels_last",
)


class ConvVAE(nn.Module):
    """The reference VAE on FDS's conv networks; `channels_last` keeps activations NHWC."""

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.encoder = ConvEncoder((1, 28, 28), (32, 32, 64, 64), 2 * LATENT_DIM)
        self.decoder = ConvDecoder(LATENT_DIM, (1, 28, 28), (32, 32, 64, 64), 1)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        images = x.view(-1, 1, 28, 28)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        mean, logvar = self.encoder(images).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = self.decoder(z).reshape(len(x), -1)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return (nll + kl).mean()


def train(variant: str, x: torch.Tensor, epochs: int, seed: int) -> tuple[float, float]:
    """(steady-state examples/s, seconds of the first step) of one variant."""
    torch.manual_seed(seed)
    conv = variant.startswith("conv")
    model: nn.Module = ConvVAE(variant == "conv_channels_last") if conv else BareVAE()
    batch = 256 if variant == "batch256" else BATCH
    lr = LR * (2**0.5 if variant == "batch256" else 1.0)
    kind = {"base": {}, "foreach": {"foreach": True}}.get(variant, {"fused": True})
    opt = torch.optim.Adam(model.parameters(), lr=lr, **kind)
    loss_fn: Callable[[torch.Tensor], torch.Tensor] = model.loss
    if variant == "compile":
        loss_fn = torch.compile(model.loss)
    source = x.numpy()
    gen = torch.Generator().manual_seed(seed)
    steps = len(x) // batch
    seconds, first = [], float("nan")
    for epoch in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for b in range(steps):
            rows = order[b * batch : (b + 1) * batch]
            if variant == "numpy_batches":
                xb = torch.from_numpy(np.ascontiguousarray(source[np.sort(rows.numpy())]))
            else:
                xb = x[rows]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
                loss = loss_fn(xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch == 0 and b == 0:
                first = time.perf_counter() - started
        seconds.append(time.perf_counter() - started)
    return steps * batch / median(seconds[1:]), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=6400, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (+1 warm-up)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.n, args.epochs = 1, 1024, 1
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    loaded = load_fashion("train", n=args.n)
    X = loaded[0] if loaded is not None else random_images(args.n)
    x = torch.from_numpy(X.reshape(len(X), -1).copy())

    rates: dict[str, list[float]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    firsts: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants:
            rate, first = train(v, x, 1 + args.epochs, seed=r)
            rates[v].append(rate)
            firsts[v].append(first)
            print(f"repeat {r + 1}/{args.repeats} {v:<20} {rate:8,.0f} ex/s", flush=True)
        for v in variants:
            reference = "conv" if v.startswith("conv") else "base"
            if reference in rates:
                ratios[v].append(rates[v][-1] / rates[reference][-1])
    print()
    print(f"{len(x)} images/epoch, 1 thread, {args.repeats} interleaved repeats (medians)")
    print_table(
        ["variant", "ex/s", "÷ plain (same repeat)", "first step s"],
        [[v, median(rates[v]), median(ratios[v]), median(firsts[v])] for v in variants],
    )
    emit_json(
        {
            "benchmark": "speed_options",
            "repeats": args.repeats,
            "images_per_epoch": len(x),
            "examples_per_s": {v: median(rates[v]) for v in variants},
            "over_plain": {v: median(ratios[v]) for v in variants},
            "first_step_s": {v: median(firsts[v]) for v in variants},
            "per_repeat": rates,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
