"""`FDS`: the scikit-learn style façade over codec → model → trainer → model directory.

Parameters are the fields of `fds.config.FDSConfig` (one source of truth for names and defaults,
shared with the YAML `--config`), plus `encoder`/`decoder` for user-supplied networks and
`verbose` for the progress bar. Learned attributes end in `_`, as in scikit-learn.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from fds.config import FDSConfig, make_config, reject_unknown
from fds.data.codec import Codec, input_kind_of
from fds.data.codecs import codec_from_json
from fds.data.conditions import parse_conditions
from fds.data.constraints import describe, fit_constraints, holds
from fds.data.image_codec import ImageCodec
from fds.data.rejection import Rule, draw_accepted
from fds.data.sensitive import (
    SensitiveColumn,
    encode_sensitive,
    fit_sensitive,
    key_requested,
    sensitive_frame,
    sensitive_from_json,
    sensitive_to_json,
)
from fds.data.stream import Rows, split_indices
from fds.data.stream_fit import fit_streamed
from fds.data.streamed_rows import StreamedRows, counted_frames, split_units
from fds.data.table_stream import TableSource, Unit
from fds.data.tabular import HistogramNoise, TabularCodec, rows_kept
from fds.errors import ConfigError, DataError, DataTypeError, ModelFormatError
from fds.io import load_model
from fds.models import FactorizedAutoencoder, build_model, column_slots
from fds.models.category_rates import CATEGORY_SHIFT, fit_category_shift
from fds.models.key_prior import KeyPrior, group_index
from fds.models.missing_rates import MISSING_SHIFT, fit_shift, logit_positions
from fds.models.trained import LATENT_LOC, LATENT_SCALE_TRIL, model_tensors, save_trained
from fds.objectives import AttributeSpec
from fds.runtime.concurrent import seeded_torch
from fds.training.trainer import Trainer

_EXTRA_PARAMS = {"encoder": None, "decoder": None, "verbose": True}
_EVAL_BATCH = 1024
STREAM_VAL_ROWS = 65_536  # streamed: validation rows (and rows the code prior is fitted on)
_SHIFT_DRAWS = 20_000  # prior draws the logit shifts are fitted on (at least the train size)
PARTS = ("all", "public", "private")


class CodecStore(Protocol):
    """Where a DP run keeps its codec and the record of its noisy statistics (`{"codec",
    "statistics"}`), so that a resumed fit reuses them; the workflows keep it in the run
    directory (`fds.workflows.train.DPCodecFile`), the estimator knows no files."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


def _as_input(X: Any) -> pd.DataFrame | np.ndarray:
    """DataFrames and arrays as they are; anything array-like (lists, `__array__`) as an array."""
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise DataError("sparse input is not supported: FDS needs dense data; use X.toarray()")
    if not isinstance(X, pd.DataFrame | np.ndarray) and (
        isinstance(X, list | tuple) or hasattr(X, "__array__")
    ):
        X = np.asarray(X)
    if isinstance(X, np.ndarray):
        if np.iscomplexobj(X):
            raise DataError("Complex data not supported: pass real values")
        if X.dtype == object:
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise DataTypeError(
                    f"an object array must hold numbers ({exc}); pass a DataFrame for text columns"
                ) from None
    input_kind_of(X)  # raises the one-line DataError naming the type or shape
    return X


class FDS(TransformerMixin, BaseEstimator):
    """Factorized stochastic autoencoder with scikit-learn's estimator interface.

    >>> m = FDS(preset="beta_tcvae", latent_dim=10, epochs=20, seed=0).fit(X)
    >>> Z = m.transform(X); X_hat = m.inverse_transform(Z); S = m.sample(500, seed=1)

    Every keyword is a field of `FDSConfig` (see `fds.config`), or `encoder`/`decoder`
    (`nn.Module`s replacing the built-in networks) and `verbose` (progress bar).
    """

    def __init__(self, **params: Any) -> None:
        reject_unknown(params, _param_defaults())
        for name, default in _param_defaults().items():
            setattr(self, name, params.get(name, default))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True  # ELBO scores use a posterior sample
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = self.missing != "error"  # missing: model/impute/drop take NaN
        return tags

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        sensitive: Any = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        codec_store: CodecStore | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> FDS:
        """Fit the codec and train the model; `y` is ignored (unsupervised), as in scikit-learn.

        `sensitive`: the values of the sensitive attributes (array, Series or DataFrame, one row
        per sample) for a model with a private block, when they are not columns of the table
        (image labels or factors). Table columns named in the `sensitive` parameter are read
        from `X` itself.

        `run_dir`: where the Trainer writes its log and checkpoints (`resume` continues from them).
        `codec_store`: where a DP run keeps the codec it fitted from noisy statistics; with
        `resume`, the codec it holds is reused instead of drawn (and spent) again.
        `on_epoch(record)`: called with each epoch's metrics (trackers, Optuna's pruning).

        A dict `{"image": ..., "text": ..., "audio": ..., "table": ...}` of aligned records
        (None/NaN where a record lacks a modality) trains the fusion model `fusion` instead
        (`fds.multimodal`, docs/multimodal.md)."""
        if (isinstance(X, Mapping) and not hasattr(X, "tocsr")) or self.modalities:
            # (scipy's dok sparse arrays are dicts too)
            return self._fit_multimodal(X, sensitive, run_dir, resume)
        config = self._config()
        X, sensitive = _drop_missing(_as_input(X), config, sensitive)
        config, self.sensitive_, attributes = _fit_sensitive(X, config, sensitive)
        config = _fit_constraints(X, config)
        saved = codec_store.load() if resume and codec_store is not None else None
        codec, source, encode, statistics = _fit_codec(X, config, saved)
        if statistics is not None and saved is None and codec_store is not None:
            codec_store.save({"codec": codec.to_json(), "statistics": statistics})
        if len(source) < 2:
            raise DataError(f"need at least 2 samples to train, got n_samples = {len(source)}")
        torch.manual_seed(config.seed)
        model = self._build(config, codec)
        train_idx, val_idx = split_indices(len(source), config.val_fraction, config.seed)
        trainer = Trainer(
            model,
            config,
            Rows(source, train_idx, encode, attributes).in_memory(),
            Rows(source, val_idx, encode, attributes).in_memory() if len(val_idx) else None,
            run_dir=Path(run_dir) if run_dir else None,
            show_progress=bool(self.verbose),
            on_epoch=on_epoch,
        )
        self.history_ = trainer.fit(resume=resume)
        config = trainer.config  # with the batch size and learning rate it trained with
        self.best_epoch_ = trainer.best_epoch  # whose weights the model holds (None: the last)
        self.global_batch_ = trainer.batch_size  # rows per step over all torchrun processes
        self.privacy_ = trainer.privacy  # spent (ε, δ) of DP-SGD, None for non-private training
        if self.privacy_ is not None:
            self.privacy_ = _with_statistics(self.privacy_, statistics)
        self.model_, self.codec_, self.config_ = model.eval(), codec, config
        self._set_input_attributes(X)
        self._fit_code_distribution(Rows(source, train_idx, encode))
        self._fit_sampling_shifts(source, train_idx)
        self._fit_key_prior(Rows(source, train_idx, encode, attributes))
        return self

    def fit_streamed(
        self,
        table: TableSource,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> FDS:
        """Fit on a table read from disk piece by piece, never whole (docs/scale.md): the codec
        in one pass (`fds.data.stream_fit`), then training on batches streamed by row group
        through a shuffle buffer (`fds.data.streamed_rows`). Validation holds out whole row
        groups (at most `STREAM_VAL_ROWS` rows, read once into memory). Not offered: DP-SGD
        (its Poisson batches need random access), a private block, constraints, modalities."""
        config = self._config()
        _check_streamable(config)
        kept: dict[Unit, int] = {}
        codec, _ = fit_streamed(
            counted_frames(table, config.missing, kept),
            kinds=config.columns,
            missing=config.missing,
            transform=config.continuous_transform,
            bounds=config.bounds,
            categories=config.categories,
        )
        units = [Unit(u.path, u.row_group, kept[u]) for u in table.units if kept.get(u)]
        train_units, val_units = split_units(
            units, config.val_fraction, config.seed, STREAM_VAL_ROWS
        )
        train = StreamedRows(table, train_units, codec.encode, config.missing)
        if len(train) < 2:
            raise DataError(f"need at least 2 samples to train, got n_samples = {len(train)}")
        val = StreamedRows(table, val_units, codec.encode, config.missing) if val_units else None
        self.sensitive_ = []
        torch.manual_seed(config.seed)
        model = self._build(config, codec)
        trainer = Trainer(
            model,
            config,
            train,
            val.head(STREAM_VAL_ROWS) if val is not None else None,
            run_dir=Path(run_dir) if run_dir else None,
            show_progress=bool(self.verbose),
            on_epoch=on_epoch,
        )
        self.history_ = trainer.fit(resume=resume)
        config = trainer.config  # with the batch size and learning rate it trained with
        self.best_epoch_, self.privacy_ = trainer.best_epoch, None
        self.global_batch_ = trainer.batch_size
        self.validation_units_ = val_units  # the held-out row groups
        self.model_, self.codec_, self.config_ = model.eval(), codec, config
        self.input_kind_ = "table"
        self.feature_names_in_ = np.asarray(codec.feature_names, dtype=object)
        self.n_features_in_ = len(codec.feature_names)
        head = train.head(STREAM_VAL_ROWS)  # the code distribution, missing and category rates
        self._fit_code_distribution(head)
        self._fit_sampling_shifts(head.source, head.index)
        self.key_prior_ = None
        return self

    def _fit_multimodal(
        self, X: Any, sensitive: Any, run_dir: str | Path | None, resume: bool
    ) -> FDS:
        from fds.multimodal import MultimodalFit

        self.fusion_ = MultimodalFit.fit(
            X,
            self._config(),
            sensitive=sensitive,
            verbose=bool(self.verbose),
            run_dir=Path(run_dir) if run_dir else None,
            resume=resume,
        )
        self.model_, self.config_ = self.fusion_.model, self.fusion_.config
        self.codec_, self.history_, self.input_kind_ = (
            self.fusion_.codec,
            self.fusion_.history,
            "multimodal",
        )
        self.privacy_ = None  # DP-SGD is not offered for fusion models
        self.sensitive_, self.key_prior_ = self.fusion_.sensitive, self.fusion_.key_prior
        return self

    def _fusion(self) -> Any:
        """The fitted multimodal model, or None for a model of one table or image set."""
        check_is_fitted(self, "model_")
        return getattr(self, "fusion_", None)

    def _config(self) -> FDSConfig:
        params = {k: getattr(self, k) for k in FDSConfig.model_fields}
        return make_config(**params).resolved()

    def _build(self, config: FDSConfig, codec: Codec) -> FactorizedAutoencoder:
        chw = codec.chw if isinstance(codec, ImageCodec) else None
        specs = [AttributeSpec(c.name, c.kind, len(c.classes)) for c in self.sensitive_]
        slots = _sensitive_slots(codec, config.sensitive)
        given = _given_slots(codec, config)
        model = build_model(
            config, codec.blocks, chw, self.encoder, self.decoder, specs, slots, given
        )
        if self.encoder is not None or self.decoder is not None:
            _check_custom_modules(model, codec.n_encoded)
        if config.privacy is not None:
            from fds.training.dp import make_private_model

            model = make_private_model(model)
        return model

    def _set_input_attributes(self, X: Any) -> None:
        self.input_kind_ = self.codec_.input_kind
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            self.n_features_in_ = X.shape[1]
        else:
            self.n_features_in_ = int(np.prod(X.shape[1:]))

    @torch.no_grad()
    def _fit_code_distribution(self, rows: Rows) -> None:
        """The Gaussian `sample` draws codes from, moment-matched to the training rows' codes.

        Deterministic codes have no prior. A VAE's prior N(0, I) is what its KL pulls the codes
        toward, not where they end up: on tables, rows drawn from it fall in the prior's holes
        and land off the data (marginals shrunk toward the middle, categories at the wrong
        rates), so tables draw from the aggregate posterior's moments instead (the spread of
        the posterior means plus the mean posterior variance), after Ghosh et al.'s ex-post
        density estimation (ICLR 2020). Images keep N(0, I). Under DP-SGD that fit would read
        the training data outside the accountant, so the standard normal is used instead
        (sampling from a DP ae, dae or sparse_ae is rough)."""
        standard = self.model_.stochastic and not isinstance(self.codec_, TabularCodec)
        if standard or self.config_.privacy is not None:
            self.latent_loc_ = torch.zeros(self.config_.latent_dim)
            self.latent_scale_tril_ = torch.eye(self.config_.latent_dim)
            return
        posteriors = [self.model_.encode(x) for x in rows.batches(_EVAL_BATCH)]
        codes = torch.cat([p.mean for p in posteriors]).double()
        cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
        if self.model_.stochastic:
            cov += torch.diag(torch.cat([p.logvar for p in posteriors]).double().exp().mean(0))
        cov += 1e-6 * torch.eye(len(cov), dtype=cov.dtype)
        self.latent_loc_ = codes.mean(0).float()
        self.latent_scale_tril_ = torch.linalg.cholesky(cov).float()

    @torch.no_grad()  # nothing here is trained: no graph for the 20k decoded draws
    def _fit_sampling_shifts(self, source: Any, train_idx: np.ndarray) -> None:
        """Shift the decoder's logits so that rows drawn from the prior miss each column as often
        as the training rows do (fds.models.missing_rates) and take each category of a binary or
        categorical column as often (fds.models.category_rates). Not under DP-SGD, for the
        reason `_fit_code_distribution` gives."""
        self.missing_shift_ = self.category_shift_ = None
        if not isinstance(self.codec_, TabularCodec) or self.config_.privacy is not None:
            return
        with seeded_torch(self.config_.seed):
            z = self._prior_draws(max(len(train_idx), _SHIFT_DRAWS))
        params = torch.cat([self.model_.decode(c) for c in z.split(_EVAL_BATCH)])
        means = torch.as_tensor(np.asarray(source[train_idx], dtype=np.float64).mean(0))
        encoded = self.codec_.indicator_positions()
        if encoded:
            where = logit_positions(self.model_.likelihood, encoded)
            self.missing_shift_ = fit_shift(params[:, where], means[encoded])
        self.category_shift_ = fit_category_shift(
            self.model_.likelihood, self.codec_.blocks, params, means, skip=encoded
        )

    def _prior_draws(self, n: int) -> torch.Tensor:
        eps = torch.randn(n, self.config_.latent_dim)
        return self.latent_loc_ + eps @ self.latent_scale_tril_.T

    def _decoded_params(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's parameters for codes drawn from the prior, indicator logits shifted."""
        params = self.model_.decode(z)
        if getattr(self, "missing_shift_", None) is not None:
            where = logit_positions(self.model_.likelihood, self.codec_.indicator_positions())
            params[:, where] += self.missing_shift_
        if getattr(self, "category_shift_", None) is not None:
            params += self.category_shift_
        return params

    @torch.no_grad()
    def _fit_key_prior(self, rows: Rows) -> None:
        """The distribution keys are drawn from for public-only decodings: a Gaussian per
        sensitive group of the training rows' keys (the block's own prior under DP-SGD, for the
        reason `_fit_code_distribution` gives)."""
        if not self.model_.private_dim:
            self.key_prior_ = None
            return
        if self.config_.privacy is not None:
            self.key_prior_ = self._block_prior()
            return
        cut = self.model_.public_dim
        keys, labels = [], []
        for x, s in rows.batches_with_attributes(_EVAL_BATCH):
            keys.append(self.model_.encode(x).mean[:, cut:])
            labels.append(s)
        specs = [AttributeSpec(c.name, c.kind, len(c.classes)) for c in self.sensitive_]
        groups = group_index(torch.cat(labels), specs)
        self.key_prior_ = KeyPrior.fit(torch.cat(keys).numpy(), groups)

    def _block_prior(self) -> KeyPrior:
        """The model's prior over the private block alone (the marginal of its code prior)."""
        cut = self.model_.public_dim
        cov = self.latent_scale_tril_ @ self.latent_scale_tril_.T
        return KeyPrior.gaussian(self.latent_loc_[cut:], torch.linalg.cholesky(cov[cut:, cut:]))

    # ------------------------------------------------------------------ use
    def _rows(self, X: Any) -> Rows:
        check_is_fitted(self, "model_")
        X = _as_input(X)
        if input_kind_of(X) != self.input_kind_:
            raise DataError(f"the model was fitted on {self.input_kind_}, got {input_kind_of(X)}")
        if isinstance(self.codec_, ImageCodec):
            return Rows(X, np.arange(len(X)), self.codec_.encode)
        if isinstance(X, np.ndarray) and X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features, but FDS is expecting {self.n_features_in_} features as input"
            )
        encoded = self.codec_.encode(X)
        return Rows(encoded, np.arange(len(encoded)))

    @torch.no_grad()
    def transform(
        self,
        X: Any,
        sample: bool = False,
        part: str = "all",
        seed: int | None = None,
        *,
        seal: Any = None,
        modalities: Sequence[str] | None = None,
        sensitive: Any = None,
    ) -> Any:
        """Latent codes: posterior means, or draws z ~ q(z|x) with `sample=True`.

        `part`: "all", or for a model with a private block "public" (the first
        latent_dim − private_dim columns, trained to carry none of the sensitive attributes)
        or "private" (the last private_dim columns: the key). The noise of draws comes from
        the OS afresh at every call, so nobody holding the model can regenerate and subtract
        it; `seed` fixes it (for tests and reproductions: whoever knows it can).

        `seal`: the owner's CKKS keys (a `fds keys new` directory, or a loaded context; only
        the public key is used): returns `SealedLatents`, the public block in the clear and the
        private block encrypted, for `inverse_transform(sealed, keys=...)` or `.save(path)`.

        `modalities`: for a multimodal model, the modalities the code is fused from (default:
        every modality X holds). Its key (the private block) is encoded from the sensitive
        values alone: `sensitive` (one row per record), else the table modality's columns."""
        if part not in PARTS:
            raise DataError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
        if self._fusion() is not None:
            if seal is not None:
                raise DataError("seal= is not offered for multimodal models yet")
            with seeded_torch(_noise_seed(seed)):
                return self.fusion_.transform(X, modalities, sample, part, sensitive)
        if sensitive is not None:
            raise DataError("sensitive= is for multimodal models, whose key reads the values")
        if seal is not None and part != "all":
            raise DataError("seal= seals the private block beside the public one: keep part='all'")
        with seeded_torch(_noise_seed(seed)):
            codes = [
                self.model_.encode(x, sample=sample).z for x in self._rows(X).batches(_EVAL_BATCH)
            ]
        z = torch.cat(codes).numpy()
        if seal is not None:
            return self._seal(z, seal)
        if part == "all":
            return z
        if not self.model_.private_dim:
            raise DataError(f"part={part!r} needs a model with a private block (private_dim > 0)")
        public_dim = self.model_.public_dim
        return z[:, :public_dim] if part == "public" else z[:, public_dim:]

    @torch.no_grad()
    def inverse_transform(
        self,
        Z: Any,
        private: Any = None,
        *,
        keys: Any = None,
        seed: int | None = None,
        modality: str | None = None,
    ) -> Any:
        """Decoder mean for latent codes, in the type and columns of the training input.

        For a model with a private block, `Z` may hold only the public block; `private` then
        supplies the private block: "prior" (the default for public-only `Z`: one key per row
        drawn from where the training rows' keys fall, a Gaussian per sensitive group weighted
        by its share, so the sensitive attributes follow their marginal), "neutral" (their
        mean, one key for every row), one block broadcast to every row, or one block per row
        (e.g. taken from other records, which swaps the attributes). Given with a full-width
        `Z`, `private` replaces its private block. The "prior" draws come from the OS afresh at
        every call; `seed` fixes them.

        `Z` may be `SealedLatents` (`transform(X, seal=keys)`, `SealedLatents.load`): with
        `keys` (the owner's keys directory, `secret.ctx` or secret context) the private block is
        decrypted and the full records come back; without, public-only records, decoded from
        the public block as above.

        `modality`: for a multimodal model, the one modality to decode Z into (required); its
        key is supplied by `private` as above."""
        from fds.privacy.he.seal import SealedLatents  # CKKS only for sealed latents

        if self._fusion() is not None:
            if modality is None:
                raise DataError(
                    f"name the modality to decode: one of {', '.join(self.fusion_.modalities)}"
                )
            return self.fusion_.decode(self._with_key(Z, private, seed), modality)

        if isinstance(Z, SealedLatents):
            Z, private = self._unseal(Z, private, keys)
        elif keys is not None:
            raise DataError("keys= opens sealed latents (transform(X, seal=keys)); Z is plain")
        z = self._latents(Z, allow_public=True)
        if private is not None or z.shape[1] != self.config_.latent_dim:
            key = self._private_block(private, len(z), seed)
            z = torch.cat([z[:, : self.model_.public_dim], key], 1)
        return self.codec_.decode(self._decode_mean(z))

    def _with_key(self, Z: Any, private: Any, seed: int | None) -> Any:
        """Multimodal latents with their private block: public-only `Z`, or any `Z` with
        `private` given, gets the key `private` names (`_private_block`); other shapes are
        left to the decoder's check."""
        z = np.asarray(Z, dtype=np.float32)
        public_dim = getattr(self.model_, "public_dim", self.model_.latent_dim)
        public_only = z.ndim == 2 and z.shape[1] == public_dim < self.model_.latent_dim
        if private is None and not public_only:
            return Z
        if z.ndim != 2 or z.shape[1] not in (public_dim, self.model_.latent_dim):
            return Z
        key = self._private_block(private, len(z), seed).numpy()
        return np.hstack([z[:, :public_dim], key])

    def _seal(self, z: np.ndarray, keys: Any) -> Any:
        """`SealedLatents` of full latent codes `z`: the private block under `keys`."""
        from fds.privacy.he.seal import seal_latents

        if not self.model_.private_dim:
            raise DataError("seal= needs a model with a private block (private_dim > 0)")
        public_dim = self.model_.public_dim
        columns = getattr(self, "feature_names_in_", None)
        return seal_latents(
            z[:, :public_dim], z[:, public_dim:], keys, model_id=self._model_id(), columns=columns
        )

    def _unseal(self, sealed: Any, private: Any, keys: Any) -> tuple[np.ndarray, Any]:
        """(latents, private) to decode sealed latents with: the public block and the decrypted
        private block with `keys`; the public block alone (and `private`) without."""
        check_is_fitted(self, "model_")
        sealed.check_model(self._model_id(), self.model_.public_dim, self.model_.private_dim)
        if keys is None:
            return sealed.public, private
        if private is not None:
            raise DataError("give keys= (the sealed private block) or private=, not both")
        return np.hstack([sealed.public, sealed.private(keys)]), None

    def _model_id(self) -> str:
        """sha256 of the weights and the codec: names the model that sealed latents belong to,
        the same before and after save/load."""
        digest = hashlib.sha256(json.dumps(self.codec_.to_json(), sort_keys=True).encode())
        for name, tensor in sorted(self._tensors().items()):
            tensor = tensor.detach().contiguous().cpu()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def _private_block(self, private: Any, n: int, seed: int | None = None) -> torch.Tensor:
        """The private block to decode with: drawn from the key prior, its mean, or given."""
        width = self.model_.private_dim
        if not width:
            raise DataError("private= needs a model with a private block (private_dim > 0)")
        if private is None or (isinstance(private, str) and private == "prior"):
            return self.key_prior_.sample(n, np.random.default_rng(seed))
        if isinstance(private, str) and private == "neutral":
            return self.key_prior_.mean().expand(n, width)
        if isinstance(private, str):
            raise DataError(
                f"private must be 'prior', 'neutral' or an array of private blocks, got {private!r}"
            )
        block = np.array(private, dtype=np.float32)
        if block.ndim == 1:
            block = block[None, :]
        if block.ndim != 2 or block.shape[1] != width or len(block) not in (1, n):
            raise DataError(
                f"private blocks must have shape ({n}, {width}) or ({width},) (private_dim = "
                f"{width}), got {np.shape(private)}"
            )
        if not np.isfinite(block).all():
            raise DataError("private blocks hold NaN or inf")
        return torch.from_numpy(block).expand(n, width)

    def _decode_mean(self, z: torch.Tensor) -> np.ndarray:
        parts = [self.model_.likelihood.mean(self.model_.decode(c)) for c in z.split(_EVAL_BATCH)]
        return torch.cat(parts).numpy()

    def _latents(self, Z: Any, allow_public: bool = False) -> torch.Tensor:
        check_is_fitted(self, "model_")
        Z = np.array(Z, dtype=np.float32)  # a copy: latents may come from a read-only memmap
        widths = [self.config_.latent_dim]
        if allow_public and self.model_.private_dim:
            widths.append(self.model_.public_dim)
        if Z.ndim != 2 or Z.shape[1] not in widths:
            expected = " or ".join(f"(N, {w})" for w in widths)
            public = " (all latents or the public block)" if len(widths) > 1 else ""
            raise DataError(f"expected latents of shape {expected}{public}, got {Z.shape}")
        if not np.isfinite(Z).all():
            raise DataError("latents hold NaN or inf")
        return torch.from_numpy(Z)

    @torch.no_grad()
    def reconstruction_mse(self, X: Any) -> float:
        """Mean squared error per value between x and the decoder mean at the posterior mean, in
        the encoded space (pixels in [0, 1]; standardized columns; one-hot categories)."""
        total, count = 0.0, 0
        for x in self._rows(X).batches(_EVAL_BATCH):
            x_hat = self.model_.likelihood.mean(self.model_.decode(self.model_.encode(x).mean))
            total += float((x_hat - x).pow(2).sum())
            count += x.numel()
        return total / count

    def sample(
        self,
        n: int,
        seed: int | None = None,
        *,
        conditions: Any = None,
        max_draws: int | None = None,
        allow_fewer: bool = False,
        modalities: Sequence[str] | None = None,
    ) -> Any:
        """`n` new rows or images from the prior. Table cells are drawn from the decoder's
        distribution (so categories vary as in the data); images are the decoder mean. The draws
        are fresh OS randomness at every call unless `seed` fixes them (the model's own `seed`
        never does).

        `conditions` (tables): {column: value} equalities, or texts such as "age>=30" (operators
        ==, =, !=, <, <=, >, >=). Rows are drawn in batches and only those meeting every condition
        and every constraint of the model are kept (rejection sampling: exact, see
        docs/synthesis.md), drawing at most `max_draws` rows (default: 200 per row asked, at least
        100,000). A condition no row can meet, or fewer than `n` rows kept, raises
        `ConditionNotMetError` naming it; `allow_fewer` returns the rows kept instead (at least
        one). With `verbose`, a progress bar shows once such sampling takes over a second.

        A multimodal model returns {modality: records} for `modalities` (default: all)."""
        if self._fusion() is not None:
            if conditions is not None:
                raise DataError("conditions apply to tables; this model is multimodal")
            return self.fusion_.sample(n, modalities, _noise_seed(seed))
        check_is_fitted(self, "model_")
        if int(n) < 1:
            raise DataError(f"n must be at least 1, got {n}")
        rules = self._sampling_rules(conditions)
        base = _noise_seed(seed)
        if not rules:
            return self._draw(int(n), base)
        accepted = draw_accepted(
            lambda size, batch: self._draw(size, _batch_seed(base, batch)),
            self._as_frame,
            rules,
            int(n),
            max_draws=max_draws,
            allow_fewer=allow_fewer,
            progress=bool(self.verbose),
        )
        return accepted.rows

    @torch.no_grad()
    def _draw(self, n: int, noise_seed: int) -> Any:
        """`n` rows or images from the prior, their noise seeded by `noise_seed`."""
        with seeded_torch(noise_seed):
            z = self._prior_draws(n)
            if isinstance(self.codec_, ImageCodec):
                return self.codec_.decode(self._decode_mean(z))
            draws = [
                self.model_.likelihood.sample(self._decoded_params(c)) for c in z.split(_EVAL_BATCH)
            ]
        return self.codec_.decode(torch.cat(draws).numpy())

    def _sampling_rules(self, conditions: Any) -> list[Rule]:
        """The model's constraints and the caller's conditions, as tests on decoded rows."""
        constraints = self.config_.constraints
        if conditions is None and not constraints:
            return []
        if not isinstance(self.codec_, TabularCodec):
            raise DataError("conditions apply to table columns; this model was fitted on images")
        specs = {spec.name: spec for spec in self.codec_.columns}
        parsed = parse_conditions(conditions, specs, constraints)
        return [Rule(f"constraint {describe(r)}", partial(holds, r)) for r in constraints] + [
            Rule(f"condition {c}", c.meets) for c in parsed
        ]

    def _as_frame(self, rows: Any) -> pd.DataFrame:
        """Decoded rows with their column names (a model fitted on an array decodes to one)."""
        if isinstance(rows, pd.DataFrame):
            return rows
        return pd.DataFrame(rows, columns=self.codec_.feature_names)

    @torch.no_grad()
    def score_samples(self, X: Any) -> np.ndarray:
        """Per-example ELBO in nats (one posterior sample, fixed seed)."""
        with seeded_torch(self.config_.seed):
            parts = [self.model_.elbo(x) for x in self._rows(X).batches(_EVAL_BATCH)]
        return torch.cat(parts).numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Mean ELBO per example in nats (higher is better), so GridSearchCV can pick latent_dim.

        Continuous table columns are scored in their standardized units."""
        return float(self.score_samples(X).mean())

    def probe(
        self,
        X: Any,
        y: Any,
        *,
        task: str = "auto",
        heads: Any = None,
        test_size: float = 0.25,
        seed: int | None = None,
        raw: bool = True,
    ) -> dict[str, Any]:
        """Fit probe heads on the latents of a seeded train split and score them on the rest,
        beside the same heads on the raw features (the codec's encoding: standardized and one-hot
        columns, or flattened pixels in [0, 1]). Rows whose `y` is missing are dropped.

        `task`: auto, classification, regression or clustering (`y` may be None); `heads`: names
        from `fds.evaluation.probes.HEADS`. Returns `{"task", "n_train", "n_test", "n_dropped",
        "rows": [{"head", "features": "latent"|"raw", metric: value}]}`. A multimodal model
        probes its fused code (no raw rows: its records have no one feature table).
        """
        from fds.evaluation.probes import run_probe, split_for_probe  # sklearn heads: lazy

        Z = self.transform(X)
        raw = raw and self._fusion() is None  # multimodal records have no one raw feature table
        seed = self.config_.seed if seed is None else seed
        split = split_for_probe(len(Z), y, task=task, test_size=test_size, seed=seed)
        tr, te = split.train, split.test
        y = None if y is None else np.asarray(y)
        R = self.codec_.encode(_as_input(X)) if raw else None
        result = run_probe(
            Z[tr],
            None if y is None else y[tr],
            Z[te],
            None if y is None else y[te],
            task=split.task,
            heads=heads,
            raw=(R[tr], R[te]) if raw else None,
            seed=seed,
        )
        return result | {"n_dropped": split.n_dropped}

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model directory (no pickle); see `fds.io`."""
        if self._fusion() is not None:
            return self.fusion_.save(path)
        return save_trained(
            path,
            self.config_,
            self.codec_,
            self._tensors(),
            n_features_in=self.n_features_in_,
            feature_names_in=list(getattr(self, "feature_names_in_", [])) or None,
            epochs_trained=len(self.history_),
            sensitive=sensitive_to_json(self.sensitive_),
            privacy=getattr(self, "privacy_", None),
            custom_encoder=self.encoder is not None,
            custom_decoder=self.decoder is not None,
        )

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = model_tensors(self.model_, self.latent_loc_, self.latent_scale_tril_)
        if getattr(self, "key_prior_", None) is not None:
            tensors |= self.key_prior_.tensors()
        if getattr(self, "missing_shift_", None) is not None:
            tensors[MISSING_SHIFT] = self.missing_shift_
        if getattr(self, "category_shift_", None) is not None:
            tensors[CATEGORY_SHIFT] = self.category_shift_
        return tensors

    @classmethod
    def load(
        cls, path: str | Path, *, encoder: nn.Module | None = None, decoder: nn.Module | None = None
    ) -> FDS:
        """Load and verify a model directory (or a run directory holding `model/`)."""
        config, tensors, codec_state, manifest = load_model(path)
        for part, module in (("encoder", encoder), ("decoder", decoder)):
            if config.get(f"custom_{part}") and module is None:
                raise ModelFormatError(
                    f"this model was trained with a custom {part}: pass {part}= to FDS.load"
                )
        try:
            model = cls(**config["params"], encoder=encoder, decoder=decoder, verbose=False)
            model.config_ = model._config()
        except ConfigError as exc:
            raise ModelFormatError(f"config.json: {exc}") from None
        if codec_state.get("input_kind") == "multimodal":
            sensitive = config["fitted"].get("sensitive")
            return model._load_multimodal(tensors, codec_state, sensitive)
        model.codec_ = codec_from_json(codec_state)
        model.sensitive_ = sensitive_from_json(config["fitted"].get("sensitive") or [])
        model.model_ = model._build(model.config_, model.codec_).eval()
        model.latent_loc_ = tensors.pop(LATENT_LOC)
        model.latent_scale_tril_ = tensors.pop(LATENT_SCALE_TRIL)
        model.missing_shift_ = tensors.pop(MISSING_SHIFT, None)
        indicators = getattr(model.codec_, "indicator_positions", list)()
        if model.missing_shift_ is not None and model.missing_shift_.shape != (len(indicators),):
            raise ModelFormatError(
                f"weights.safetensors holds {MISSING_SHIFT} of shape "
                f"{tuple(model.missing_shift_.shape)}, codec.json has {len(indicators)} indicators"
            )
        model.category_shift_ = tensors.pop(CATEGORY_SHIFT, None)
        n_params = model.model_.likelihood.n_params
        if model.category_shift_ is not None and model.category_shift_.shape != (n_params,):
            raise ModelFormatError(
                f"weights.safetensors holds {CATEGORY_SHIFT} of shape "
                f"{tuple(model.category_shift_.shape)}, the decoder has {n_params} parameters"
            )
        model.key_prior_ = KeyPrior.from_tensors(tensors, model.model_.private_dim)
        if model.key_prior_ is None and model.model_.private_dim:
            model.key_prior_ = model._block_prior()  # a model file without one: the block prior
        try:
            model.model_.load_state_dict(tensors)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFormatError(
                f"weights.safetensors does not fit the config: {first}"
            ) from None
        fitted = config["fitted"]
        model.input_kind_ = model.codec_.input_kind
        model.n_features_in_ = fitted["n_features_in"]
        if fitted.get("feature_names_in"):
            model.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        model.history_ = []
        model.privacy_ = manifest.get("privacy")
        return model

    def _load_multimodal(
        self,
        tensors: dict[str, torch.Tensor],
        codec_state: dict[str, Any],
        sensitive: list[dict[str, Any]] | None,
    ) -> FDS:
        from fds.multimodal import MultimodalFit

        self.fusion_ = MultimodalFit.from_saved(self.config_, tensors, codec_state, sensitive)
        self.model_, self.codec_ = self.fusion_.model, self.fusion_.codec
        self.input_kind_, self.history_, self.privacy_ = "multimodal", [], None
        self.sensitive_, self.key_prior_ = self.fusion_.sensitive, self.fusion_.key_prior
        return self


def _noise_seed(seed: int | None) -> int:
    """The seed of noise drawn for output: the caller's, else 63 fresh bits from the OS (never
    the model's stored `seed`, which anyone holding the model directory can read)."""
    return secrets.randbits(63) if seed is None else int(seed)


def _batch_seed(base: int, batch: int) -> int:
    """The noise seed of batch `batch` of a conditional sample whose noise seed is `base`: each
    batch draws new noise, and the same `base` gives the same batches."""
    return int(np.random.SeedSequence([base, batch]).generate_state(1, np.uint64)[0] >> 1)


def _fit_constraints(X: Any, config: FDSConfig) -> FDSConfig:
    """The config with its constraints checked against the table (and the combinations a
    fixed_combinations rule allows read from it); see `fds.data.constraints`."""
    if not config.constraints:
        return config
    if input_kind_of(X) != "table":
        raise ConfigError("constraints apply to table columns; the data are images")
    frame = X.copy(deep=False) if isinstance(X, pd.DataFrame) else pd.DataFrame(X).add_prefix("x")
    frame.columns = [str(c) for c in frame.columns]
    rules = fit_constraints(config.constraints, frame, private=config.privacy is not None)
    return config.model_copy(update={"constraints": rules})


def _param_defaults() -> dict[str, Any]:
    defaults = {name: field.default for name, field in FDSConfig.model_fields.items()}
    return defaults | _EXTRA_PARAMS


# scikit-learn reads parameter names from __init__'s signature; generate it from FDSConfig so
# the names and defaults are written down once.
FDS.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in _param_defaults().items()
    ]
)


def _fit_codec(
    X: Any, config: FDSConfig, saved: dict[str, Any] | None
) -> tuple[Codec, np.ndarray, Any, dict[str, Any] | None]:
    """The fitted codec, the array batches are read from, the per-batch encoder (images), and the
    DP record of the codec's statistics (None when none were computed with DP). `saved`: a
    resumed DP run's codec and statistics, reused (they are noisy: drawing again would spend)."""
    if input_kind_of(X) == "images":
        codec = ImageCodec.fit(X)  # shape and dtype only: no statistic of the pixels
        return codec, X, codec.encode, None
    if saved is not None:
        codec = codec_from_json(saved["codec"])
        return codec, codec.encode(X), None, saved["statistics"]
    noise, statistics = _statistics_noise(config, len(X))
    codec = TabularCodec.fit(
        X,
        kinds=config.columns,
        missing=config.missing,
        transform=config.continuous_transform,
        bounds=config.bounds,
        categories=config.categories,
        declared_only=config.privacy is not None,
        histogram_noise=noise,
    )
    return codec, codec.encode(X), None, statistics


def _statistics_noise(
    config: FDSConfig, n_rows: int
) -> tuple[HistogramNoise | None, dict[str, Any] | None]:
    """Noise for the DP histograms of the declared-bounds columns, and its record for the ledger.

    One record adds 1 to one bin of each of the k histograms: L2 sensitivity √k (add/remove)."""
    privacy = config.privacy
    if privacy is None or privacy.statistics_epsilon is None or not config.bounds:
        return None, None
    from fds.privacy.release import analytic_gaussian_sigma
    from fds.training.accounting import default_delta

    delta = privacy.delta if privacy.delta is not None else default_delta(n_rows)
    sensitivity = math.sqrt(len(config.bounds))
    sigma = analytic_gaussian_sigma(privacy.statistics_epsilon, delta, sensitivity)
    record = {
        "mechanism": "gaussian-histogram",
        "epsilon": privacy.statistics_epsilon,
        "delta": delta,
        "noise_multiplier": sigma / sensitivity,
        "sample_rate": 1.0,
        "steps": 1,
        "columns": sorted(config.bounds),
        "covers": "the codec's means, scales and quantiles of the declared-bounds columns, with "
        "respect to adding or removing one row (all rows, validation included)",
    }
    return HistogramNoise(sigma, np.random.default_rng(privacy.noise_seed)), record


def _with_statistics(privacy: dict[str, Any], statistics: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's record: DP-SGD, the codec's DP statistics, and their composition."""
    if statistics is None:
        return privacy | {"total_epsilon": privacy["epsilon"]}
    from fds.training.accounting import epsilon_spent

    history = [
        (privacy["noise_multiplier"], privacy["sample_rate"], privacy["steps"]),
        (statistics["noise_multiplier"], 1.0, 1),
    ]
    total = epsilon_spent(history, privacy["delta"], "rdp")
    return privacy | {"codec_statistics": statistics, "total_epsilon": total}


def _sensitive_slots(codec: Codec, names: tuple[str, ...]) -> list[int]:
    """The encoded positions of a table's sensitive columns (none for images, or for values
    given beside the table): what the public encoder must not see."""
    if not isinstance(codec, TabularCodec):
        return []
    return column_slots(codec.blocks, codec.part_widths(), names)


def _given_slots(codec: Codec, config: FDSConfig) -> list[list[int]]:
    """The encoded slots of each `mmd_given` column's first part (its value, not its missingness
    indicator), which the MMD conditions on; refuses what it cannot condition on."""
    if not config.mmd_given:
        return []
    if not config.mmd or not config.private_dim:
        raise ConfigError(
            "mmd_given conditions the mmd term, which this model does not have: set mmd > 0 "
            "(with a private block; DP-SGD drops the mmd)"
        )
    if not isinstance(codec, TabularCodec):
        raise ConfigError("mmd_given names table columns; this model's data is not a table")
    clash = [name for name in config.mmd_given if name in config.sensitive]
    if clash:
        raise ConfigError(
            f"mmd_given column {clash[0]!r} is sensitive: conditioning on it would allow "
            "everything it reveals"
        )
    parts, given = codec.part_widths(), []
    starts = itertools.accumulate((w for _, w in parts), initial=0)
    positions = [(part, start, w) for (part, w), start in zip(parts, starts, strict=False)]
    for name in config.mmd_given:
        found = [(start, w) for part, start, w in positions if part == name]
        if not found:
            raise DataError(f"mmd_given column {name!r} is not a column of the data")
        start, width = found[0]
        given.append(list(range(start, start + width)))
    return given


def _drop_missing(X: Any, config: FDSConfig, sensitive: Any) -> tuple[Any, Any]:
    """A table without the rows missing: drop removes, and the sensitive values of the rows kept."""
    if input_kind_of(X) != "table":
        return X, sensitive
    keep = rows_kept(X, config.missing)
    if keep is None or keep.all():
        return X, sensitive
    if isinstance(sensitive, pd.DataFrame | pd.Series):
        sensitive = sensitive.iloc[keep]
    elif sensitive is not None:
        sensitive = np.asarray(sensitive)[keep]
    return (X.iloc[keep] if isinstance(X, pd.DataFrame) else X[keep]), sensitive


def _fit_sensitive(
    X: Any, config: FDSConfig, values: Any
) -> tuple[FDSConfig, list[SensitiveColumn], np.ndarray | None]:
    """(config with the sensitive names, their encoders, the encoded values aligned with X's
    rows); nothing when the model has no private block. Missing pieces fail before training."""
    how = (
        "set sensitive=('column',) for a table, or pass fit(X, sensitive=values) "
        "(CLI: --sensitive COLUMN|label|factor:NAME)"
    )
    if not key_requested(config, values is not None, how):
        return config, [], None
    names = tuple(config.sensitive)
    frame, names = sensitive_frame(X, names, values)
    columns = fit_sensitive(frame)
    return config.model_copy(update={"sensitive": names}), columns, encode_sensitive(columns, frame)


def _check_streamable(config: FDSConfig) -> None:
    """Refuse, before reading the table, what streamed training does not offer."""
    refused = {
        "privacy (DP-SGD draws Poisson batches, which need random access to the rows)": (
            config.privacy is not None
        ),
        "a private block (private_dim, sensitive)": bool(config.private_dim or config.sensitive),
        "constraints": bool(config.constraints),
        "modalities": bool(config.modalities),
    }
    what = next((name for name, on in refused.items() if on), None)
    if what is not None:
        raise ConfigError(
            f"a streamed table cannot be trained with {what}; train on the table in memory "
            "(without --stream, on a file under the streaming threshold)"
        )


def _check_custom_modules(model: FactorizedAutoencoder, n_in: int) -> None:
    """Run one dummy row through user networks so a size mismatch fails before training."""
    n_codes = model.posterior.n_params_per_dim * model.latent_dim
    with torch.no_grad():
        try:
            h = model.encoder(torch.zeros(2, n_in))
        except RuntimeError as exc:
            raise ConfigError(f"custom encoder fails on input of width {n_in}: {exc}") from None
        if h.shape != (2, n_codes):
            raise ConfigError(
                f"custom encoder must output {n_codes} values per row, got {tuple(h.shape[1:])}"
            )
        out = model.decoder(torch.zeros(2, model.latent_dim))
        if out.shape != (2, model.likelihood.n_params):
            raise ConfigError(
                f"custom decoder must output {model.likelihood.n_params} values per row "
                f"(the likelihood's parameters), got {tuple(out.shape[1:])}"
            )
