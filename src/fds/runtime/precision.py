"""The number format of a training step's encoder and decoder passes: float32, or bfloat16.

On a CPU with native bfloat16 arithmetic (AVX512-BF16, AMX) the matmuls of a large MLP run
about 1.5× faster in bfloat16 (docs/performance.md), and they are most of a training step. FDS
runs only the networks under bfloat16 autocast: weights, gradients, optimizer state, losses and
everything a user reads back (codes, reconstructions, samples, scores) stay float32.

`precision="auto"` (the default) picks bfloat16 only where it was measured to pay without
costing quality: an MLP on images (the Fashion-MNIST VAE kept its test MSE and probe accuracy),
large enough for its matmuls to dominate a step, not under DP-SGD, on a CPU with native
bfloat16. Tables stay float32 (a decoded value would keep only bfloat16's ~3 significant digits
before sampling), and so do conv and what/where nets (not measured yet). `"float32"` and
`"bfloat16"` force a format.

bfloat16 rounds differently from float32, so a seed's weights differ between the two; a run
keeps the format it started with in its checkpoints, so a resume still matches an uninterrupted
run bit for bit (training/trainer.py).
"""

from __future__ import annotations

import functools
from typing import Literal

from fds.errors import ConfigError
from fds.runtime.threads import SMALL_WORK

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = ("float32", "bfloat16")
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether the CPU does bfloat16 arithmetic natively (its /proc/cpuinfo flags; False where
    they cannot be read): elsewhere torch emulates it, slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(_NATIVE_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def choose_precision(
    setting: str, *, image: bool, mlp: bool, private: bool, work: int
) -> Precision:
    """The format of a run's network passes. `setting` is the config's precision; `image`: the
    model reads images; `mlp`: its encoder and decoder are plain MLPs; `private`: DP-SGD;
    `work`: parameters × batch rows (as for the thread count)."""
    if setting == "bfloat16" and private:
        raise ConfigError(
            "precision='bfloat16' is not offered under DP-SGD (privacy): the per-example "
            "clipping is done in float32; use precision='auto' or 'float32'"
        )
    if setting in PRECISIONS:
        return setting  # type: ignore[return-value]
    pays = image and mlp and not private and work >= SMALL_WORK
    return "bfloat16" if pays and cpu_has_bf16() else "float32"
