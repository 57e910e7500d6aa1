"""The multimodal half of the `FDS` estimator: `FDS.fit` hands a dict of modalities here.

`MultimodalFit` holds the fitted `MultimodalCodec` and fusion model and answers the estimator's
verbs for them: `transform` from any subset of modalities, `inverse_transform` to one modality,
`sample` of any modalities from the prior, and the model directory (the vocabulary and every
codec as JSON, weights as safetensors: no pickle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fds.config import FDSConfig
from fds.data.multimodal import MultimodalCodec
from fds.data.multimodal.codec import hide_at_random
from fds.data.multimodal.columns import split_modalities
from fds.errors import ConfigError, DataError, ModelFormatError
from fds.io import save_model
from fds.models.fusion import FusionModel, build_fusion
from fds.models.trained import LATENT_LOC, LATENT_SCALE_TRIL
from fds.training.fusion import train_fusion

__all__ = ["MultimodalFit", "as_modalities"]

_BATCH = 512


class MultimodalFit:
    """A trained fusion model with its codec; built by `fit` or `from_saved`."""

    def __init__(self, codec: MultimodalCodec, model: FusionModel, config: FDSConfig) -> None:
        self.codec, self.model, self.config = codec, model.eval(), config
        self.history: list[dict[str, Any]] = []

    @property
    def modalities(self) -> list[str]:
        return self.codec.modalities

    @classmethod
    def fit(
        cls,
        data: Any,
        config: FDSConfig,
        *,
        verbose: bool = False,
        run_dir: Path | None = None,
        resume: bool = False,
    ) -> MultimodalFit:
        """Fit the codecs on the present records, hide `missing_rate` of the modalities at
        random (each record keeps one), and train the fusion model `config.fusion`. `data` is a
        dict of modalities, or a table split by `config.modalities`. `run_dir` keeps the log and
        the checkpoint, which `resume` continues from (`fds.training.fusion`)."""
        if config.privacy is not None:
            raise ConfigError("DP-SGD (privacy) is not supported with multimodal data yet")
        if config.private_dim:
            raise DataError(
                "a private block (private_dim) is not supported with multimodal data yet; "
                "train without one"
            )
        data, found_rate = as_modalities(data, config)
        options = {"missing": config.missing, "transform": config.continuous_transform}
        rate = config.sample_rate or found_rate
        codec = MultimodalCodec.fit(
            data, table_options=options, **({"sample_rate": rate} if rate else {})
        )
        encoded, present = codec.encode(data)
        mask = np.stack([present[kind] for kind in codec.modalities])
        if len(mask[0]) < 2:
            raise DataError(f"need at least 2 records to train, got {len(mask[0])}")
        mask = hide_at_random(mask, config.missing_rate, config.seed)
        torch.manual_seed(config.seed)
        fitted = cls(codec, build_fusion(codec, config), config)
        fitted.history = train_fusion(fitted.model, encoded, mask, config, verbose, run_dir, resume)
        fitted.model.eval()
        return fitted

    # ------------------------------------------------------------------ use
    def _given(self, modalities: Sequence[str] | None) -> list[str]:
        given = list(self.modalities if modalities is None else modalities)
        if not given:
            raise DataError("modalities must name at least one modality")
        for kind in given:
            self.codec.check(kind)
        return given

    @torch.no_grad()
    def transform(
        self,
        data: Mapping[str, Any],
        modalities: Sequence[str] | None = None,
        sample: bool = False,
    ) -> np.ndarray:
        """Fused codes of the records from `modalities` (default: every modality `data` has);
        a record lacking all of them gets the prior mean (zeros)."""
        data, _ = as_modalities(data, self.config)
        given = self._given(list(data) if modalities is None else modalities)
        missing = [kind for kind in given if kind not in data]
        if missing:
            raise DataError(f"modalities={given} names {missing[0]!r}, which the data lacks")
        encoded, present = self.codec.encode({k: v for k, v in data.items() if k in given})
        mask = torch.from_numpy(np.stack([present[k] for k in self.model.kinds])).float()
        tensors = {k: torch.from_numpy(v) for k, v in encoded.items()}
        parts = []
        for start in range(0, mask.shape[1], _BATCH):
            batch = {k: t[start : start + _BATCH] for k, t in tensors.items()}
            parts.append(self.model.fuse(batch, mask[:, start : start + _BATCH], sample)[0])
        return torch.cat(parts).numpy()

    def decode(self, Z: Any, modality: str, specific: torch.Tensor | None = None) -> Any:
        """Modality `modality` of codes Z (N, latent_dim), in the type it was given at fit:
        images as arrays, captions as a list of str, sounds as (N, samples) waveforms, tables
        as DataFrames. `specific`: mmvae_plus's own latents of the modality (default: their
        prior mean)."""
        kind = self.codec.check(modality)
        z = np.array(Z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.model.latent_dim:
            raise DataError(
                f"expected latents of shape (N, {self.model.latent_dim}), got {z.shape}"
            )
        if not np.isfinite(z).all():
            raise DataError("latents hold NaN or inf")
        chunks = max(1, -(-len(z) // _BATCH))
        own = [None] * chunks if specific is None else torch.tensor_split(specific, chunks)
        parts = [
            self.model.generate(torch.from_numpy(c), kind, u).numpy()
            for c, u in zip(np.array_split(z, chunks), own, strict=True)
        ]
        return self.codec.decode(kind, np.concatenate(parts))

    def sample(
        self, n: int, modalities: Sequence[str] | None = None, seed: int = 0
    ) -> dict[str, Any]:
        """`n` records drawn from the prior and decoded into each of `modalities` (mmvae_plus:
        each modality's own latents drawn from their prior too)."""
        if int(n) < 1:
            raise DataError(f"n must be at least 1, got {n}")
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(int(n), self.model.latent_dim, generator=generator).numpy()
        drawn = {}
        for kind in self._given(modalities):
            own = self.model.specific_dim
            specific = torch.randn(int(n), own, generator=generator) if own else None
            drawn[kind] = self.decode(z, kind, specific)
        return drawn

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """The model directory: config.json (params, modalities), codec.json (every codec,
        the vocabulary included), weights.safetensors; the prior N(0, I) as the fitted
        latent distribution `fds.io` expects."""
        d = self.model.latent_dim
        document = {
            "params": self.config.model_dump(mode="json"),
            "fitted": {
                "n_features_in": sum(self.codec.width(k) for k in self.modalities),
                "feature_names_in": list(self.modalities),
                "epochs_trained": len(self.history),
                "sensitive": None,
                "modalities": list(self.modalities),
            },
        }
        tensors = dict(self.model.state_dict())
        tensors |= {LATENT_LOC: torch.zeros(d), LATENT_SCALE_TRIL: torch.eye(d)}
        return save_model(path, document, tensors, self.codec.to_json())

    @classmethod
    def from_saved(
        cls, config: FDSConfig, tensors: dict[str, torch.Tensor], codec_state: dict[str, Any]
    ) -> MultimodalFit:
        codec = MultimodalCodec.from_json(codec_state)
        model = build_fusion(codec, config)
        tensors = {k: v for k, v in tensors.items() if k not in (LATENT_LOC, LATENT_SCALE_TRIL)}
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFormatError(
                f"weights.safetensors does not fit the config: {first}"
            ) from None
        return cls(codec, model, config)


def as_modalities(
    data: Any, config: FDSConfig, base: Path | None = None
) -> tuple[Mapping[str, Any], int | None]:
    """(the dict of modalities, the WAV sample rate found): a dict as it is, a table split by
    `config.modalities` (paths relative to `base`, else to the working directory)."""
    if isinstance(data, Mapping):
        return data, None
    if isinstance(data, pd.DataFrame) and config.modalities:
        return split_modalities(data, config.modalities, base)
    raise DataError(
        "this model reads multimodal data: pass a dict of modalities, or a table with "
        "modalities={kind: column} (CLI: --modalities image=photo,text=description,table=rest)"
    )
