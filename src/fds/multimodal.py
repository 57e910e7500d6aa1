"""The multimodal half of the `FDS` estimator: `FDS.fit` hands a dict of modalities here.

`MultimodalFit` holds the fitted `MultimodalCodec` and fusion model and answers the estimator's
verbs for them: `transform` from any subset of modalities, `inverse_transform` to one modality,
`sample` of any modalities from the prior, and the model directory (the vocabulary and every
codec as JSON, weights as safetensors: no pickle).

With sensitive attributes and a private block (the `fds` preset), the code is [public | key]:
the key is encoded from the sensitive values alone (a column of the table modality, which its
encoder then does not read, or values given beside the data), the experts give the public
block (fds.models.fusion.key).
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
from fds.data.multimodal.codec import check_aligned, hide_at_random
from fds.data.multimodal.columns import split_modalities
from fds.data.sensitive import (
    SensitiveColumn,
    encode_sensitive,
    fit_sensitive,
    key_requested,
    sensitive_frame,
    sensitive_from_json,
    sensitive_to_json,
)
from fds.errors import ConfigError, DataError, ModelFormatError
from fds.io import save_model
from fds.models.fusion import FusionModel, build_fusion
from fds.models.fusion.experts import draw
from fds.models.key_prior import KeyPrior, group_index
from fds.models.trained import LATENT_LOC, LATENT_SCALE_TRIL
from fds.objectives.attributes import AttributeSpec
from fds.training.fusion import train_fusion

__all__ = ["MultimodalFit", "as_modalities"]

_BATCH = 512


class MultimodalFit:
    """A trained fusion model with its codec; built by `fit` or `from_saved`."""

    def __init__(
        self,
        codec: MultimodalCodec,
        model: FusionModel,
        config: FDSConfig,
        sensitive: list[SensitiveColumn] | None = None,
        key_prior: KeyPrior | None = None,
    ) -> None:
        self.codec, self.model, self.config = codec, model.eval(), config
        self.sensitive = sensitive or []  # how the key's attributes are encoded
        self.key_prior = key_prior  # where the training records' keys fall (None: no key)
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
        sensitive: Any = None,
        verbose: bool = False,
        run_dir: Path | None = None,
        resume: bool = False,
    ) -> MultimodalFit:
        """Fit the codecs on the present records, hide `missing_rate` of the modalities at
        random (each record keeps one), and train the fusion model `config.fusion`. `data` is a
        dict of modalities, or a table split by `config.modalities`. `run_dir` keeps the log and
        the checkpoint, which `resume` continues from (`fds.training.fusion`).

        `sensitive`: values of the sensitive attributes (one row per record) when they are not
        columns of the table modality named in `config.sensitive`; either gives the model a key
        (with `config.private_dim`, as the `fds` preset sets)."""
        if config.privacy is not None:
            raise ConfigError("DP-SGD (privacy) is not supported with multimodal data yet")
        data, found_rate = as_modalities(data, config)
        config, columns, s = _fit_key_values(data, config, sensitive)
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
        fitted = cls(codec, build_fusion(codec, config, _specs(columns)), config, columns)
        fitted.history = train_fusion(
            fitted.model, encoded, mask, config, verbose, run_dir, resume, s
        )
        fitted.model.eval()
        if s is not None:
            fitted.key_prior = fitted._fit_key_prior(s)
        return fitted

    @torch.no_grad()
    def _fit_key_prior(self, s: np.ndarray) -> KeyPrior:
        """A Gaussian per sensitive group of the training records' keys (their means)."""
        values = torch.from_numpy(s)
        keys = self.model.key(values)[0].numpy()
        return KeyPrior.fit(keys, group_index(values, _specs(self.sensitive)))

    @torch.no_grad()
    def keys(self, data: Mapping[str, Any], sensitive: Any, sample: bool) -> torch.Tensor:
        """Each record's private block: the key's posterior mean (or a draw) from its sensitive
        values, given or read from the table modality of `data`."""
        names = tuple(c.name for c in self.sensitive)
        n = check_aligned(data)
        if sensitive is None:
            table = data.get("table")
            if not isinstance(table, pd.DataFrame) or not set(names) <= set(table.columns):
                raise DataError(
                    f"the key is encoded from the sensitive values ({', '.join(names)}): give "
                    "them as sensitive=..., or the table modality holding them, or ask for "
                    "part='public'"
                )
            frame = table[list(names)].reset_index(drop=True)
        else:
            frame, _ = sensitive_frame(range(n), names, sensitive)
        mu, logvar = self.model.key(torch.from_numpy(encode_sensitive(self.sensitive, frame)))
        return draw(mu, logvar) if sample else mu

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
        part: str = "all",
        sensitive: Any = None,
    ) -> np.ndarray:
        """Fused codes of the records from `modalities` (default: every modality `data` has);
        a record lacking all of them gets the prior mean (zeros). With a key: `part` "public"
        (the fused public block), "private" (the key, from the sensitive values: `keys`) or
        "all" (both)."""
        data, _ = as_modalities(data, self.config)
        if part != "all" and not self.model.private_dim:
            raise DataError(f"part={part!r} needs a model with a private block (private_dim > 0)")
        keys = None
        if self.model.private_dim and part != "public":
            keys = self.keys(data, sensitive, sample).numpy()
            if part == "private":
                return keys
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
        public = torch.cat(parts).numpy()
        return public if keys is None else np.hstack([public, keys])

    def decode(self, Z: Any, modality: str, specific: torch.Tensor | None = None) -> Any:
        """Modality `modality` of codes Z (N, latent_dim), in the type it was given at fit:
        images as arrays, captions as a list of str, sounds as (N, samples) waveforms, tables
        as DataFrames. `specific`: mmvae_plus's own latents of the modality (default: their
        prior mean). With a key, Z may be the public block alone: decoded with the neutral key
        (the mean of the key prior; `FDS.inverse_transform` offers the other keys)."""
        kind = self.codec.check(modality)
        z = np.array(Z, dtype=np.float32)
        widths = {self.model.latent_dim, self.model.public_dim}
        if z.ndim != 2 or z.shape[1] not in widths:
            shown = " or ".join(f"(N, {w})" for w in sorted(widths, reverse=True))
            raise DataError(f"expected latents of shape {shown}, got {z.shape}")
        if not np.isfinite(z).all():
            raise DataError("latents hold NaN or inf")
        if self.key_prior is not None and z.shape[1] == self.model.public_dim:
            neutral = self.key_prior.mean().numpy()
            z = np.hstack([z, np.broadcast_to(neutral, (len(z), len(neutral)))])
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
        if self.key_prior is not None:  # keys where the training records' keys fall
            z[:, self.model.public_dim :] = self.key_prior.sample(n, np.random.default_rng(seed))
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
                "sensitive": sensitive_to_json(self.sensitive) if self.sensitive else None,
                "modalities": list(self.modalities),
            },
        }
        tensors = dict(self.model.state_dict())
        tensors |= {LATENT_LOC: torch.zeros(d), LATENT_SCALE_TRIL: torch.eye(d)}
        if self.key_prior is not None:
            tensors |= self.key_prior.tensors()
        return save_model(path, document, tensors, self.codec.to_json())

    @classmethod
    def from_saved(
        cls,
        config: FDSConfig,
        tensors: dict[str, torch.Tensor],
        codec_state: dict[str, Any],
        sensitive: list[dict[str, Any]] | None = None,
    ) -> MultimodalFit:
        """The model a directory holds; `sensitive`: config.json's `fitted.sensitive`."""
        codec = MultimodalCodec.from_json(codec_state)
        columns = sensitive_from_json(sensitive or [])
        model = build_fusion(codec, config, _specs(columns))
        tensors = {k: v for k, v in tensors.items() if k not in (LATENT_LOC, LATENT_SCALE_TRIL)}
        key_prior = KeyPrior.from_tensors(tensors, model.private_dim)
        if (key_prior is None) != (model.key is None):
            raise ModelFormatError(
                "weights.safetensors: the key prior does not match the model's private block"
            )
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFormatError(
                f"weights.safetensors does not fit the config: {first}"
            ) from None
        return cls(codec, model, config, columns, key_prior)


def _specs(columns: Sequence[SensitiveColumn]) -> list[AttributeSpec]:
    return [AttributeSpec(c.name, c.kind, len(c.classes)) for c in columns]


def _fit_key_values(
    data: Mapping[str, Any], config: FDSConfig, values: Any
) -> tuple[FDSConfig, list[SensitiveColumn], np.ndarray | None]:
    """(config with the sensitive names, their encoders, the encoded values of every record)
    for a model with a key; (config, [], None) without one. Bad combinations fail here,
    before any training, as one typed error naming the culprit."""
    how = (
        "a column of the table modality (sensitive=('column',)), or values given as "
        "fit(X, sensitive=values) (CLI: --sensitive COLUMN|factor:NAME)"
    )
    if not key_requested(config, values is not None, how):
        return config, [], None
    names = tuple(config.sensitive)
    if config.mmd_given:
        raise ConfigError("mmd_given is not offered for fusion models; train without it")
    if config.public_input != "without_sensitive":
        raise ConfigError(
            "public_input='all' is not offered for fusion models: their experts never read the "
            "sensitive values"
        )
    if values is None:
        table = data.get("table")
        if not isinstance(table, pd.DataFrame):
            raise DataError(
                f"sensitive attribute {names[0]!r}: the data has no table modality to read it "
                "from; give the values as fit(X, sensitive=values) (CLI: --sensitive factor:NAME)"
            )
        missing = [name for name in names if name not in table.columns]
        if missing:
            raise DataError(
                f"sensitive column {missing[0]!r} is not a column of the table modality "
                f"(columns: {', '.join(map(str, table.columns))})"
            )
        frame = table[list(names)].reset_index(drop=True)
    else:
        frame, names = sensitive_frame(range(check_aligned(data)), names, values)
    columns = fit_sensitive(frame)
    encoded = encode_sensitive(columns, frame)
    return config.model_copy(update={"sensitive": names}), columns, encoded


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
