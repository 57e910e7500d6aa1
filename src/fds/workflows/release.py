"""`fds release` and `fds ledger`: DP release of a run's latents, charged to the run's ledger.

Order of work: load the model and data, plan the release (σ from ε, δ, C), refuse an existing
output, encode; then, holding the ledger's lock, check the budget, draw the noise, write the latents
and their metadata (atomically) and record the release. Check and record are one transaction, so
parallel releases cannot together exceed the budget, and a refused release writes nothing.
Training runs with DP-SGD are recorded by `record_training`, which `train_run` calls after the
model is saved.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fds.data.files import LoadedData, read_data, write_output
from fds.errors import DataError
from fds.estimator import FDS
from fds.privacy.ledger import (
    Ledger,
    data_fingerprint,
    ledger_path,
    release_entry,
    statistics_entry,
    training_entry,
)
from fds.privacy.release import release_latents, release_metadata
from fds.rundir import write_json


def metadata_path(out: Path) -> Path:
    """The metadata JSON written next to released latents: FILE + '.json'."""
    return out.with_name(out.name + ".json")


def release_run(
    model: str | Path,
    data: str,
    out: str | Path,
    *,
    epsilon: float,
    delta: float,
    clip: float | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Encode `data` with the run's model, clip, add calibrated noise, write `out` + metadata."""
    out = Path(out)
    fitted = FDS.load(model)
    loaded = read_data(data, seed=fitted.config_.seed)
    # The default C depends only on the model's shape (a N(0, I) code has norm ≈ √d), never on data.
    clip = float(clip) if clip is not None else math.sqrt(fitted.config_.latent_dim)
    plan = release_metadata(epsilon, delta, clip, len(loaded.X))
    for target in (out, metadata_path(out)):
        if target.exists() and not overwrite:
            raise DataError(f"{target} exists; pass --overwrite to replace it")
    fingerprint = data_fingerprint(loaded.X)
    latents = fitted.transform(loaded.X)  # no privacy cost yet: only the noisy copy is released
    with Ledger.transaction(ledger_path(model)) as ledger:
        total = ledger.check(fingerprint, release_entry(plan))
        noisy, metadata = release_latents(latents, epsilon, delta, clip, seed)
        metadata |= {"model": str(model), "data": loaded.source, "data_fingerprint": fingerprint}
        write_output(noisy, out, overwrite=overwrite)
        try:
            write_json(metadata_path(out), metadata)
            ledger.add(fingerprint, loaded.source, release_entry(metadata))
            ledger.save()
        except BaseException:
            out.unlink(missing_ok=True)
            metadata_path(out).unlink(missing_ok=True)
            raise
    return {
        "out": str(out),
        "metadata": str(metadata_path(out)),
        "rows": len(noisy),
        "latent_dim": int(noisy.shape[1]),
        "epsilon": metadata["epsilon"],
        "delta": metadata["delta"],
        "clip": metadata["clip"],
        "noise_std": metadata["noise_std"],
        "ledger": str(ledger.path),
        "ledger_total_epsilon": total,
        "ledger_delta": ledger.delta(),
    }


def record_training(model: FDS, data: LoadedData, run_dir: Path) -> dict[str, Any] | None:
    """Add a DP-SGD run to its ledger; returns the ledger summary (None for non-private runs)."""
    if model.privacy_ is None:
        return None
    fingerprint = data_fingerprint(data.X)
    # a resumed run replaces its own entry: its record already counts every step it took
    run = str(Path(run_dir).resolve())
    with Ledger.transaction(ledger_path(run_dir)) as ledger:
        ledger.remove(fingerprint, kind="dp-sgd training", run=run)
        ledger.remove(fingerprint, kind="codec statistics", run=run)
        ledger.add(fingerprint, data.source, training_entry(model.privacy_) | {"run": run})
        if "codec_statistics" in model.privacy_:
            entry = statistics_entry(model.privacy_["codec_statistics"]) | {"run": run}
            ledger.add(fingerprint, data.source, entry)
        ledger.save()
    return {"ledger": str(ledger.path), "ledger_total_epsilon": ledger.total_epsilon(fingerprint)}
