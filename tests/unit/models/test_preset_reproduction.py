"""Every preset reproduces its stored weights (and logged losses) bit for bit.

Each case trains for two epochs on tiny data made here (so a change to the built-in datasets does
not move the digests), with fixed seeds and one thread, and compares the sha256 of the trained
weights and of the per-epoch log (without its wall time) with `tests/data/preset_weights.json`. A refactor of the objective or the trainer must keep
them; a change meant to alter training regenerates them, saying so in its commit:

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m tests.unit.models.test_preset_reproduction --write

The digest covers the state_dict in sorted key order, each entry as its key, dtype, shape and raw
bytes. Key names are part of it on purpose: a saved model directory is loaded by those names.

The last bits also depend on the machine: the library versions and the CPU's instruction set,
by which MKL and oneDNN pick their kernels (the digests written on one 2-core host did not
reproduce on another with AMX and AVX512-FP16). The file records that environment, and elsewhere
the test is skipped, saying why; regenerate the digests there on the commit before a change to
check that the change keeps them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS

DIGESTS = Path(__file__).parents[2] / "data" / "preset_weights.json"
TINY = {"latent_dim": 4, "hidden_dims": [16], "batch_size": 32, "epochs": 2, "seed": 5}
TINY |= {"verbose": False}
DP = {"epsilon": 4.0, "noise_seed": 11}


def _table(n: int = 128) -> pd.DataFrame:
    """Two continuous columns (one leaking `s`), a count, and the binary sensitive column `s`."""
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, size=n)
    return pd.DataFrame(
        {
            "x1": 2.0 * s + rng.normal(0, 0.5, n),
            "x2": rng.normal(size=n),
            "k": rng.poisson(3, size=n),
            "s": pd.Categorical.from_codes(s, ["no", "yes"]),
        }
    )


def _images(n: int = 96, side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images of one filled square each, and which half of the image it sits in (0/1)."""
    rng = np.random.default_rng(1)
    images = np.zeros((n, side, side), dtype=np.uint8)
    size = rng.integers(3, 7, size=n)
    top, left = rng.integers(0, side - size), rng.integers(0, side - size)
    for i in range(n):
        images[i, top[i] : top[i] + size[i], left[i] : left[i] + size[i]] = 255
    return images, (left >= side // 2).astype(np.int64)


TABLE_PRESETS = ("ae", "dae", "sparse_ae", "vae", "beta_vae", "beta_tcvae", "factor_vae", "vae_gan")
KEY = {"preset": "fds", "sensitive": ("s",)}
# name -> (data, FDS parameters); "images" rows carry their labels as `sensitive=`
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{preset: ("table", {"preset": preset}) for preset in TABLE_PRESETS},
    "fds": ("table", KEY),
    "fds_alternating": ("table", KEY | {"adversary": "alternating"}),
    "fds_gradient_reversal": ("table", KEY | {"adversary": "gradient_reversal"}),
    "fds_alternating_warmup": (
        "table",
        KEY | {"adversary": "alternating", "censor_warmup_epochs": 3, "kl_warmup_epochs": 3},
    ),
    "beta_tcvae_sparsity_kl": ("table", {"preset": "beta_tcvae", "sparsity_kl": 0.1}),
    "ae_hsic": ("table", {"preset": "ae", "independence": 1.0}),
    "fds_decorrelation": ("table", KEY | {"independence_kind": "decorrelation"}),
    "vae_conv_images": ("images", {"preset": "vae", "architecture": "conv"}),
    "vae_gan_conv_images": ("images", {"preset": "vae_gan", "architecture": "conv"}),
    "beta_vae_mlp_images": ("images", {"preset": "beta_vae", "architecture": "mlp"}),
    "vae_dp_images": ("images", {"preset": "vae", "privacy": DP}),
    "fds_dp_images": (
        "images_key",
        {"preset": "fds", "independence": 0.0, "privacy": DP},
    ),
}


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def history_digest(history: list[dict[str, Any]]) -> str:
    """The logged values (losses sum the terms in a fixed order, which the weights do not see)."""
    records = [{k: v for k, v in record.items() if k != "seconds"} for record in history]
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def train(case: str) -> dict[str, str]:
    data, params = CASES[case]
    conv = {"conv_channels": [4, 8]} if params.get("architecture") == "conv" else {}
    model = FDS(**(TINY | conv | params))
    if data == "table":
        model.fit(_table())
    else:
        images, labels = _images()
        model.fit(images, sensitive=labels if data == "images_key" else None)
    return {"weights": weights_digest(model.model_), "history": history_digest(model.history_)}


def _stored() -> dict[str, Any]:
    return json.loads(DIGESTS.read_text())


def environment() -> dict[str, str]:
    """What the digests depend on besides the code: the numeric libraries' versions and the
    CPU's instruction set (torch's kernel level and a digest of the CPU's feature flags)."""
    versions = {name: importlib.metadata.version(name) for name in ("numpy", "scikit-learn")}
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    features = hashlib.sha256(" ".join(sorted(flags.split()[2:])).encode()).hexdigest()[:16]
    return {"torch": torch.__version__, **versions} | {
        "cpu": f"{torch.backends.cpu.get_cpu_capability()} {features}"
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_preset_reproduces_its_stored_weights(case: str) -> None:
    stored, here = _stored(), environment()
    if stored["environment"] != here:
        differ = {k: (v, here.get(k)) for k, v in stored["environment"].items() if here.get(k) != v}
        pytest.skip(
            f"digests were made elsewhere (stored, here: {differ}): regenerate them (see the "
            "module docstring) on the commit before your change"
        )
    torch.set_num_threads(1)
    got, expected = train(case), stored["digests"][case]
    assert got["weights"] == expected["weights"], f"{case} no longer trains the same weights"
    assert got["history"] == expected["history"], f"{case} no longer logs the same losses"


def test_every_preset_has_a_stored_run() -> None:
    from fds.config import PRESETS

    trained = {params.get("preset") for _, params in CASES.values()}
    assert trained >= set(PRESETS)
    assert set(_stored()["digests"]) == set(CASES)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    torch.set_num_threads(1)
    DIGESTS.parent.mkdir(exist_ok=True)
    payload = {"environment": environment(), "digests": {case: train(case) for case in CASES}}
    DIGESTS.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(CASES)} digests to {DIGESTS}")
