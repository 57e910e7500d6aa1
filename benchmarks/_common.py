"""Shared pieces of the benchmark scripts: data, the bare PyTorch reference VAE, tables.

The reference is the textbook VAE loop written directly in PyTorch, with nothing of FDS in it:
MLP encoder 784-512-512-(2×16), decoder 16-512-512-784, reparameterization, Bernoulli likelihood
(BCE-with-logits summed over pixels) plus the analytic KL to N(0, I), Adam, data already a float
tensor, a fresh shuffled index each epoch.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (28, 28)
N_PIXELS = 28 * 28
LATENT_DIM = 16
HIDDEN = (512, 512)
BATCH = 128
LR = 1e-3

# The model every benchmark trains, as FDS keywords (the "model spec").
MODEL_SPEC: dict[str, Any] = {
    "preset": "vae",
    "latent_dim": LATENT_DIM,
    "hidden_dims": list(HIDDEN),
    "likelihood": "bernoulli",
    "architecture": "mlp",
}


# --------------------------------------------------------------------------- data
def load_fashion(split: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Fashion-MNIST `split` as float32 images (N,28,28) in [0,1] and labels, or None when absent."""
    from fds.data.datasets import load_builtin
    from fds.errors import DataError

    try:
        data = load_builtin("fashion-mnist", split=split, n=n)
    except (DataError, FileNotFoundError, OSError):
        return None
    return np.asarray(data.X, dtype=np.float32) / 255.0, np.asarray(data.labels)


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """Stand-in of the same shape and range: uniform random pixels in [0,1]."""
    return np.random.default_rng(seed).random((n, *IMAGE_SHAPE), dtype=np.float32)


# --------------------------------------------------------------------------- reference model
def mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class BareVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = mlp(N_PIXELS, HIDDEN, 2 * LATENT_DIM)
        self.decoder = mlp(LATENT_DIM, tuple(reversed(HIDDEN)), N_PIXELS)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        nll = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return (nll + kl).mean()


def bare_train(
    model: BareVAE, x: torch.Tensor, epochs: int, seed: int = 0, lr: float = LR
) -> list[float]:
    """The reference loop; returns the wall-clock seconds of each epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = len(x) // BATCH  # drop the last partial batch, as FDS does
    seconds = []
    model.train()
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for b in range(steps):
            loss = model.loss(x[order[b * BATCH : (b + 1) * BATCH]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - started)
    return seconds


@torch.no_grad()
def bare_evaluate(model: BareVAE, x: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """Test MSE (sigmoid of the decoder at the posterior mean, pixels in [0,1]), the one-sample
    ELBO in nats per example, and the posterior means."""
    model.eval()
    sq, elbo, means = 0.0, 0.0, []
    gen = torch.Generator().manual_seed(seed)
    for xb in x.split(1024):
        mean, logvar = model.encoder(xb).chunk(2, dim=-1)
        sq += float((torch.sigmoid(model.decoder(mean)) - xb).pow(2).sum())
        eps = torch.randn(mean.shape, generator=gen)
        z = mean + torch.exp(0.5 * logvar) * eps
        nll = F.binary_cross_entropy_with_logits(model.decoder(z), xb, reduction="none").sum(-1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        elbo += float((-nll - kl).sum())
        means.append(mean)
    return {"mse": sq / x.numel(), "elbo": elbo / len(x), "Z": torch.cat(means).numpy()}


def linear_macs(module: nn.Module) -> int:
    """Multiply-accumulates per example of every nn.Linear in `module` (Σ in×out)."""
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


# --------------------------------------------------------------------------- reporting
def median(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table: numbers right-aligned (4 significant decimals below 10), text left."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "-"
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    line = "  ".join(
        h.rjust(w) if num else h.ljust(w)
        for h, w, num in zip(headers, widths, numeric, strict=True)
    )
    print(line.rstrip())
    print("-" * len(line.rstrip()))
    for r in text:
        print(
            "  ".join(
                c.rjust(w) if num else c.ljust(w)
                for c, w, num in zip(r, widths, numeric, strict=True)
            ).rstrip()
        )


def emit_json(payload: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object, nothing before it on the line."""
    print(json.dumps(payload), flush=True)


def environment() -> dict[str, Any]:
    import platform

    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


class CpuPressure:
    """Share of wall time some task waited for a CPU (Linux PSI), to flag contended measurements
    on a shared machine; None where /proc/pressure/cpu is unavailable."""

    def __enter__(self) -> CpuPressure:
        self.value: float | None = None
        self._start = (_psi_cpu_us(), time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        stalled, wall = _psi_cpu_us(), time.perf_counter()
        if stalled is not None and self._start[0] is not None:
            self.value = (stalled - self._start[0]) / 1e6 / max(wall - self._start[1], 1e-9)


def _psi_cpu_us() -> int | None:
    try:
        with open("/proc/pressure/cpu") as f:
            first = f.readline().split()
    except OSError:
        return None
    return int(dict(kv.split("=") for kv in first[1:])["total"])


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies over all CPUs of the machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])


def wait_for_idle(min_idle: float = 0.85, window: float = 1.0, timeout: float = 60.0) -> float:
    """Sleep until the machine's CPUs were at least `min_idle` idle over a `window`-second span
    (other people's jobs share this machine), or until `timeout`; returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = _cpu_times()
        time.sleep(window)
        after = _cpu_times()
        if before is None or after is None:
            break
        total = after[1] - before[1]
        if total <= 0 or (after[0] - before[0]) / total >= min_idle:
            break
    return time.perf_counter() - started


def swap_and_leakage(key: dict[str, Any], public: dict[str, Any]) -> dict[str, Any]:
    """The figures of `fds.workflows.key_quality` and the public block's leakage that the key
    benchmarks (key.py, shapes_censors.py) both report, under the same names."""
    return {
        "public_only_accuracy": key["public_only_attribute_accuracy"],
        "swap_success": key["swap_success"],
        "swap_position_r2": key["swap_keeps"]["position_r2"],
        "swap_size_r2": key["swap_keeps"]["size_r2"],
        "leakage": public["best_accuracy"],
        "leakage_auc": public["best_auc"],
        "leakage_majority": public["majority"],
    }
