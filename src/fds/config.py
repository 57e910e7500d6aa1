"""Every option of an FDS, validated once: the estimator's parameters, the YAML `--config`, presets.

The YAML file mirrors `FDS(...)`'s keyword arguments one to one, so a user can move a setting between
the CLI and the API without translating it. Unknown keys fail with the closest valid name.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from fds.errors import ConfigError
from fds.rundir import RUN_KEYS

Posterior = Literal["deterministic", "gaussian", "noisy"]
Likelihood = Literal["auto", "bernoulli", "gaussian", "gaussian_learned", "mixture"]
Corruption = Literal["gaussian", "masking", "salt_pepper"]
Adversary = Literal["gradient_reversal", "alternating", "none"]
Architecture = Literal["auto", "mlp", "conv", "what_where"]
MissingPolicy = Literal["model", "impute", "drop", "error"]


@dataclass(frozen=True)
class PresetDefault:
    """Marks a field a preset may set: None in the user's config means "the preset's value", and
    `value` is what the field resolves to when the preset does not set it either."""

    value: Any


def _number(value: Any) -> Any:
    """Refuse true/false and text where a number is expected (pydantic would read true as 1 and
    "10" as 10): a YAML `seed: 1e23` is text, and `latent_dim: yes` a typo, not a size."""
    if isinstance(value, bool | str | bytes):
        hint = ""
        if isinstance(value, str) and _is_float(value):  # YAML 1.1 reads 1e23 (no dot) as text
            hint = f" (YAML reads {value} as text; write it with a dot, e.g. 1.0e+23)"
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.40}{hint}")
    return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _integer(value: Any) -> Any:
    """A number, where a whole float (YAML's `1.0e+23`) counts as the integer it is, so the
    field's bounds judge it rather than a parser's size limit."""
    value = _number(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | set):
        raise ValueError(f"a category must be a single value, got a {type(value).__name__}")
    return value


Int = Annotated[int, BeforeValidator(_integer)]
Float = Annotated[float, BeforeValidator(_number)]
# A width, a count of layers' channels, a batch: at least 1 (a 0-wide layer trains nothing).
Size = Annotated[Int, Field(ge=1)]
# numpy's legacy RandomState (and so scikit-learn's random_state) takes seeds in [0, 2**32).
Seed = Annotated[Int, Field(ge=0, le=2**32 - 1)]
Category = Annotated[Any, AfterValidator(_scalar)]

# A loss weight (or another non-negative amount) a preset may set; 0 (off) unless it does.
PresetAmount = Annotated[Float | None, Field(ge=0), PresetDefault(0.0)]

# The largest model `fit` may allocate: its float32 weights within this fraction of the machine's
# memory, since training also holds their gradients and Adam's two moments (4 copies in all).
MEMORY_FRACTION = 0.25

# Loss weights and encoder kinds of the classic models; explicit parameters override them.
PRESETS: dict[str, dict[str, Any]] = {
    "ae": {"posterior": "deterministic"},
    "dae": {"posterior": "deterministic", "corruption": "masking", "corruption_level": 0.25},
    "sparse_ae": {"posterior": "deterministic", "sparsity_l1": 0.01},
    # Free bits (Kingma et al. 2016): each dimension's first 0.5 nats of KL are not penalised, which
    # keeps dimensions from collapsing to the prior; β-models keep their exact KL pressure.
    "vae": {"posterior": "gaussian", "kl": 1.0, "free_bits": 0.5},
    "beta_vae": {"posterior": "gaussian", "kl": 4.0},
    # β-TCVAE (Chen et al. 2018): KL = MI + TC + dim-KL, TC weighted β = 6 in total.
    "beta_tcvae": {"posterior": "gaussian", "kl": 1.0, "tc": 5.0},
    # FactorVAE (Kim & Mnih 2018): TC estimated by a discriminator, γ = 10.
    "factor_vae": {"posterior": "gaussian", "kl": 1.0, "factor": 10.0},
    # VAE-GAN (Larsen et al. 2016): the vae plus a critic of decoded data (fds.objectives.gan);
    # gan is the adversarial loss's weight per value of a row (the NLL sums over them); 0.02 was
    # chosen by benchmarks/vae_gan.py among 0.01-0.1 (0.1 collapsed the samples: docs/vae-gan.md).
    "vae_gan": {"posterior": "gaussian", "kl": 1.0, "free_bits": 0.5, "gan": 0.02},
    # The key: a VAE whose last `private_dim` latents carry the sensitive attributes (supervised
    # head, β = censor) while an MMD between the public codes of each sensitive group and the rest
    # keeps them out of the public block (variational fair autoencoder, Louizos et al. 2016) and
    # the two blocks are pushed apart (α = independence, between the blocks); private_only pulls
    # the private block to its group means, so the other factors stay public. The MMD measured
    # better than an adversary on both census and shapes (docs/privacy-key.md); under DP-SGD the
    # preset falls back to a gradient-reversal adversary (see FDSConfig.resolved).
    "fds": {
        "posterior": "gaussian",
        "kl": 1.0,
        "free_bits": 0.5,
        "private_dim": 2,
        "censor": 5.0,
        "independence": 1.0,
        "mmd": 30.0,
        "adversary": "none",
        "private_only": "auto",
    },
}


# --------------------------------------------------------------------------- constraints
# Rules every sampled row obeys (docs/synthesis.md), declared in a metadata file or as
# `constraints:`; `fds.data.constraints` checks them against the data and tests rows.
class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RangeConstraint(_Rule):
    """`low <= column <= high` (either end may be left out)."""

    type: Literal["range"]
    column: str
    low: Float | None = None
    high: Float | None = None

    @model_validator(mode="after")
    def _an_ordered_end(self) -> RangeConstraint:
        if self.low is None and self.high is None:
            raise ValueError(f"range of column {self.column!r} needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"range of column {self.column!r} has low > high")
        return self


class InequalityConstraint(_Rule):
    """`low <= high` between two numeric columns (`strict`: `low < high`)."""

    type: Literal["inequality"]
    low: str
    high: str
    strict: bool = False

    @model_validator(mode="after")
    def _two_columns(self) -> InequalityConstraint:
        if self.low == self.high:
            raise ValueError(f"inequality compares column {self.low!r} with itself")
        return self


class FixedCombinationsConstraint(_Rule):
    """Only the combinations of these categorical columns' values seen in the training rows
    (or the `combinations` declared, which DP training needs: it reads none from the data)."""

    type: Literal["fixed_combinations"]
    columns: tuple[str, ...] = Field(min_length=2)
    combinations: tuple[tuple[Category, ...], ...] | None = None

    @model_validator(mode="after")
    def _distinct_and_wide(self) -> FixedCombinationsConstraint:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"fixed_combinations names a column twice: {list(self.columns)}")
        for combination in self.combinations or ():
            if len(combination) != len(self.columns):
                raise ValueError(
                    f"fixed_combinations of {list(self.columns)}: combination "
                    f"{list(combination)} needs {len(self.columns)} values"
                )
        return self


class PositiveConstraint(_Rule):
    """`column >= 0` (`strict`: `column > 0`)."""

    type: Literal["positive"]
    column: str
    strict: bool = False


Constraint = Annotated[
    RangeConstraint | InequalityConstraint | FixedCombinationsConstraint | PositiveConstraint,
    Field(discriminator="type"),
]


class DPConfig(BaseModel):
    """DP-SGD settings (`privacy: {epsilon: 1}`); see docs/privacy.md for what the guarantee covers.

    `delta` None means 1/(10·n) for n training rows, which is below 1/n as DP requires.
    `accountant` rdp is Opacus' Rényi accountant: an upper bound that is fast and never fails
    numerically; prv (privacy random variables) is tighter but approximate.
    `grad_sample_mode` ghost computes per-example gradient norms without materialising them
    (Opacus' ghost clipping); hooks stores per-example gradients (works for any layer Opacus knows).
    `noise_seed` None draws the noise and batch key from the OS; an int makes a DP run repeatable,
    for tests only: whoever knows it can predict the noise, which voids the guarantee.
    `statistics_epsilon`: ε spent (on top of `epsilon`) on DP histograms that give the columns with
    declared bounds their mean and scale (or quantiles); None takes the bounds as they are.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    epsilon: Float = Field(gt=0)
    delta: Float | None = Field(None, gt=0, lt=1)
    max_grad_norm: Float = Field(1.0, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"
    grad_sample_mode: Literal["ghost", "hooks"] = "ghost"
    noise_seed: Seed | None = None
    statistics_epsilon: Float | None = Field(None, gt=0)


class DistributedConfig(BaseModel):
    """How the processes of a torchrun launch keep one model (fds.training.distributed).

    `sync_every` 1 is DistributedDataParallel: the gradients are averaged at every step. K > 1 is
    local SGD (Lin et al. 2020, "Don't use large mini-batches, use local SGD"): each rank steps
    on its own rows with its own Adam and the ranks average their weights every K steps, one
    collective per K steps instead of one per step; they also average weights and Adam's moments
    at every epoch's end, so what is validated, checkpointed and saved is one model.
    `warmup_steps`: with K > 1, the run's first steps average gradients as DDP does (post-local
    SGD), so that the ranks start apart from a trained model rather than a random one.
    Ignored in one process.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sync_every: Size = 1
    warmup_steps: Int = Field(0, ge=0)


class FDSConfig(BaseModel):
    """All parameters of an FDS model and its training, flat like scikit-learn's estimators."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # model
    preset: str = "vae"
    latent_dim: Size = 10
    # auto: see fds.models.build.choose_architecture (measured per kind and size of input)
    architecture: Architecture = "auto"
    hidden_dims: tuple[Size, ...] = (256, 256)
    conv_channels: tuple[Size, ...] = (32, 32, 64, 64)
    posterior: Annotated[Posterior | None, PresetDefault("gaussian")] = None
    noise_std: Float = Field(0.1, ge=0)
    likelihood: Likelihood = "auto"
    likelihood_scale: Float = Field(1.0, gt=0)
    # the least σ a learned Gaussian (or mixture) head may predict, in encoded units; None: 0.1
    # for tables (a floor near 0 lets σ collapse on integer-valued columns and the validation
    # loss spike: benchmarks/table_defaults.py), 1e-3 for images (pixels in [0, 1])
    scale_floor: Float | None = Field(None, gt=0)
    mixture_components: Int = Field(5, ge=2)
    # loss terms, read by the terms registered in fds.objectives (None = the preset's value)
    kl: PresetAmount = None
    free_bits: PresetAmount = None
    kl_warmup_epochs: Float = Field(0.0, ge=0)
    tc: PresetAmount = None
    # mws: minibatch-weighted sampling, the default of Chen et al.'s code and disentanglement_lib;
    # the (correct) stratified estimate disentangled less at the same budget (docs/peers.md)
    tc_estimator: Literal["mss", "mws"] = "mws"
    factor: PresetAmount = None
    gan: PresetAmount = None  # the VAE-GAN's adversarial term (a critic of decoded data)
    sparsity_l1: PresetAmount = None
    sparsity_kl: PresetAmount = None
    sparsity_target: Float = Field(0.05, gt=0, lt=1)
    # α: in a split latent (private_dim > 0) the penalty is between the public and private blocks
    independence: PresetAmount = None
    independence_kind: Literal["hsic", "decorrelation"] = "hsic"
    corruption: Annotated[Corruption | None, PresetDefault(None)] = None
    corruption_level: PresetAmount = None
    # the key: the last `private_dim` latents are the private block, trained to carry `sensitive`
    private_dim: Annotated[Int | None, Field(ge=0), PresetDefault(0)] = None
    sensitive: tuple[str, ...] = ()
    censor: PresetAmount = None  # β: weight of the privacy term
    # alternating: the adversary has its own optimizer and the encoder pulls its predictions to the
    # base rates; gradient_reversal: one optimizer, the encoder maximises the adversary's loss;
    # none: no adversary head (the mmd term alone censors the public block)
    adversary: Annotated[Adversary | None, PresetDefault("alternating")] = None
    # MMD between the public codes of each sensitive group and the rest (batch-coupled, so not
    # under DP-SGD): pushes the public block's distribution to be the same for every group
    mmd: PresetAmount = None
    # biased: the V-statistic (diagonal kept), whose (1/n_a + 1/n_b)(1 - mean kernel) part is
    # least for a collapsed block; unbiased: the diagonal left out (as with mmd_given), so only
    # a difference between the groups costs (fds.objectives.mmd)
    mmd_estimate: Literal["biased", "unbiased"] = "biased"
    # images with a key: round the public block's posterior means to multiples of this (0: off),
    # so sub-step traces of the sensitive attribute in the pixels stay out of the shared code;
    # lowers the public leakage at a cost to the keyed decodings (docs/privacy-key.md)
    public_step: Float = Field(0.0, ge=0)
    # a schedule for it: the step moves linearly from `public_step_start` to `public_step` over
    # the first `public_step_warmup_epochs` (both or neither; None/0: the step from the start).
    # A coarser start (on shapes 4 × the step) makes the decoder draw from the key before the
    # public block is fine enough to help (keyed decodings up, but the size moved into the key);
    # 0 (finer first) lets it lean on the public block first, which leaked more
    public_step_start: Float | None = Field(None, ge=0)
    public_step_warmup_epochs: Float = Field(0.0, ge=0)
    # images with a key: weight of the squared distance between a record's public code and the
    # public encoder's reading of it decoded with another record's key (batch-coupled, so not under
    # DP-SGD; fds.objectives.swap_invariance): the public code may not move with the key's content
    swap_invariance: PresetAmount = None
    # tables: columns the public block may keep even where they reveal the sensitive attributes (a
    # utility target): the MMD then compares the groups within strata of these columns (a class,
    # or a batch quartile of a number), so the public block hides what they do not reveal
    mmd_given: tuple[str, ...] = ()
    # Ramp the censoring terms (mmd, the private block's spread, the between-block independence,
    # the adversary's pull on the encoder) from 0 to full over these epochs, as DANN ramps its
    # reversal weight: the autoencoder learns the data before the censor reshapes the codes.
    censor_warmup_epochs: Float = Field(0.0, ge=0)
    # with mmd: the private block is also pulled to its group means (weight mmd), so it carries
    # the sensitive attributes only and every other factor stays in the public block (utility);
    # with mmd_given it is only kept from saying more of the given columns than s does, so it may
    # hold what the public block must give up (fds.objectives.private_spread)
    # auto: on for tables, off for images, whose key encoder cannot see the position and whose key
    # must also carry what the attribute shapes (a sprite's rotation: docs/privacy-key.md)
    private_only: Annotated[bool | Literal["auto"] | None, PresetDefault(False)] = None
    # tables with sensitive columns and a private block: the public encoder's input leaves the
    # sensitive columns out (hiding by construction; "all" feeds it every column), and the private
    # encoder reads every column ("all") or only the sensitive ones ("sensitive")
    public_input: Literal["without_sensitive", "all"] = "without_sensitive"
    private_input: Literal["all", "sensitive"] = "all"
    # training
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: Float | None = Field(None, gt=0)  # None: by data (TRAINING_DEFAULTS)
    weight_decay: Float = Field(0.0, ge=0)
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    # the model ends with an exponential moving average of its weights, updated after every step
    # with this decay (0: off, the last step's weights); validation and best-epoch selection use
    # it too (fds.training.ema)
    ema_decay: Float = Field(0.0, ge=0, lt=1)
    batch_size: Size | None = None  # None: by data (TRAINING_DEFAULTS)
    epochs: Size = 20
    max_steps: Size | None = None
    val_fraction: Float = Field(0.1, ge=0, lt=1)
    early_stopping_patience: Size | None = None
    seed: Seed = 0
    # threads of torch and the BLAS/OpenMP pools while training (None: the free cores, 1 for
    # small models, kept by the run's checkpoints; see fds.runtime.threads)
    threads: Size | None = None
    # where training runs: auto (CUDA when torch sees a GPU), cpu or cuda; under torchrun the
    # backend follows (NCCL on CUDA, gloo on CPU; fds.training.distributed)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # number format of the encoder and decoder passes while training (fds.runtime.precision):
    # auto = bfloat16 for large image MLPs on CPUs with native bfloat16, else float32; weights,
    # losses and everything read back stay float32
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # under torchrun: average the gradients every step (DDP, sync_every 1) or the weights every
    # sync_every steps (local SGD); None: {sync_every: 1, warmup_steps: 0}
    distributed: DistributedConfig | None = None
    # data
    columns: dict[str, Literal["continuous", "categorical", "binary", "count"]] | None = None
    # model: a missingness indicator per column with gaps, learned, decoded back to NaN (samples
    # keep the data's missing rates); impute: fill with median/mode; drop: drop those rows; error
    missing: MissingPolicy | dict[str, MissingPolicy] = "model"
    # bounded keeps decoded values inside each column's range (fds.data.support); all three round
    # to the data's precision and clip to its range on decoding
    continuous_transform: Literal["standard", "quantile", "bounded"] = "bounded"
    # privacy: DP-SGD; declared bounds and categories replace statistics read from the data
    privacy: DPConfig | None = None
    bounds: dict[str, tuple[Float, Float]] | None = None
    categories: dict[str, list[Category]] | None = None
    # rules every sampled row obeys (fds.data.constraints; docs/synthesis.md)
    constraints: tuple[Constraint, ...] = ()
    # multimodal data (a dict of modalities): the fusion model (fds.models.fusion), the share of
    # each record's modalities hidden at random while training, mmvae_plus's own latents
    fusion: Literal["poe", "moe", "mopoe", "mmvae_plus"] = "mopoe"
    missing_rate: Float = Field(0.0, ge=0, lt=1)
    modality_specific_dim: Size = 4
    # a table whose columns hold the modalities: {"image": "photo", "text": "description",
    # "audio": "clip", "table": "rest"} (PNG/WAV paths; `rest` = every other column)
    modalities: dict[Literal["image", "text", "audio", "table"], str] | None = None
    sample_rate: Size | None = None  # of the audio clips (WAV files set it), Hz

    @model_validator(mode="after")
    def _known_preset(self) -> FDSConfig:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}{_suggest(self.preset, PRESETS)}")
        if self.private_dim and self.private_dim >= self.latent_dim:
            raise ValueError(
                f"private_dim={self.private_dim} must be smaller than latent_dim={self.latent_dim} "
                "(the public block needs at least one dimension)"
            )
        return self

    @model_validator(mode="after")
    def _local_sgd_without_dp(self) -> FDSConfig:
        if self.privacy is not None and self.distributed and self.distributed.sync_every > 1:
            raise ValueError(
                f"distributed.sync_every={self.distributed.sync_every} (local SGD) cannot be "
                "combined with privacy (DP-SGD): its accountant needs the noisy gradient of "
                "every step averaged over the ranks; use sync_every: 1"
            )
        return self

    @model_validator(mode="after")
    def _ordered_bounds(self) -> FDSConfig:
        for name, (lo, hi) in (self.bounds or {}).items():
            if not lo < hi:
                raise ValueError(f"bounds of column {name!r} must be [low, high] with low < high")
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> FDSConfig:
        """Refuse before allocating a model whose weights alone could not be trained in memory."""
        parts = parameter_floor(self)
        limit = MEMORY_FRACTION * memory_bytes()
        count = sum(parts.values())
        if 4 * count > limit:
            name = max(parts, key=parts.__getitem__)
            value = getattr(self, name)
            shown = str(list(value) if isinstance(value, tuple) else value)
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise ValueError(
                f"{name}={shown} needs at least {_magnitude(count)} parameters "
                f"({_magnitude(4 * count, 10**9)} GB of float32 weights), more than the "
                f"{limit / 1e9:.3g} GB training can hold in this machine's memory; lower {name}"
            )
        return self

    def resolved(self) -> FDSConfig:
        """Fill every preset-controlled field left as None with the preset's value."""
        values = self.model_dump()
        if values["privacy"] is not None:
            # Free bits clamp a batch-mean KL and the MMD compares groups of a batch, so neither has
            # a per-example form: under DP-SGD a preset's values are dropped and the public block is
            # censored by the one adversary DP-SGD can train, through gradient reversal (explicit
            # values are kept, and refused by the model or the DP trainer).
            for name, dp_value in (
                ("free_bits", 0.0),
                ("mmd", 0.0),
                ("adversary", "gradient_reversal"),
            ):
                if values[name] is None:
                    values[name] = dp_value
        if values["mmd_given"] and PRESETS[self.preset].get("private_dim"):
            for name, value in given_key_defaults(self.preset, values["latent_dim"]).items():
                if values[name] is None:
                    values[name] = value
        for name, default in PRESET_FIELDS.items():
            if values[name] is None:
                values[name] = PRESETS[self.preset].get(name, default)
        if values["private_dim"] >= values["latent_dim"]:
            raise ConfigError(
                f"private_dim={values['private_dim']} (preset {self.preset}) must be smaller than "
                f"latent_dim={values['latent_dim']}; raise latent_dim or set private_dim"
            )
        return FDSConfig(**values)

    @property
    def public_dim(self) -> int:
        """Width of the public block (all of the latent when there is no private block)."""
        return self.latent_dim - (self.private_dim or 0)


def given_key_defaults(preset: str, latent_dim: int) -> dict[str, Any]:
    """A keyed preset's values under `mmd_given` (tables), where the key holds what the public
    block gives up of the other columns, not the attributes alone (fds.objectives.private_spread):
    half the latent for it, between the preset's width and 4 (SLID: sex, and age and education
    beyond the wages), and no independence between the blocks, since the public block keeps the
    given columns and what they reveal of the attributes the key carries (measured on SLID and
    census: docs/privacy-key.md)."""
    width = max(PRESETS[preset]["private_dim"], min(4, latent_dim // 2))
    return {"private_dim": width, "independence": 0.0}


# The fields a preset may set, each with its value when neither the user nor the preset sets it:
# read from their PresetDefault marks, so a new field is one declaration above.
PRESET_FIELDS: dict[str, Any] = {
    name: mark.value
    for name, field in FDSConfig.model_fields.items()
    for mark in field.metadata
    if isinstance(mark, PresetDefault)
}


# `batch_size` and `lr` when not set, by what is trained. Tables: chosen on SLID, Wage, HMDA and
# census (benchmarks/synthesis.py, docs/tables.md): batch 256 fits in about 0.6-0.8x the CPU of
# batch 128 at equal epochs, and lr 1.5e-3 (about sqrt(2)x, as the batch doubles) kept quality,
# where 2e-3 lost it on SLID. "other" (images, multimodal records, DP-SGD, federated sites and
# models with a key, whose privacy and leakage figures were measured at these) keeps 128 and 1e-3.
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "table": {"batch_size": 256, "lr": 1.5e-3},
    "other": {"batch_size": 128, "lr": 1e-3},
}
# A table with fewer training rows than this keeps "other": at batch 256 its epoch would be under 4
# steps (and drop up to a fifth of the rows with the last partial batch), too few updates in the
# default 20 epochs (an 800-row table lost the link between a column's missingness and a group;
# tests/unit/estimator/test_missing_model.py). The smallest benchmark table, HMDA, has 1,714.
TABLE_DEFAULTS_MIN_ROWS = 4 * 256


def with_training_defaults(
    config: FDSConfig, kind: Literal["table", "other"], rows: int | None = None
) -> FDSConfig:
    """`config` with `batch_size` and `lr` filled where unset, from TRAINING_DEFAULTS[kind]
    (a table under DP-SGD, with sensitive columns or a private block, or of fewer than
    TABLE_DEFAULTS_MIN_ROWS training `rows`, takes "other")."""
    small = rows is not None and rows < TABLE_DEFAULTS_MIN_ROWS
    if small or config.privacy is not None or config.sensitive or (config.private_dim or 0) > 0:
        kind = "other"
    unset = {k: v for k, v in TRAINING_DEFAULTS[kind].items() if getattr(config, k) is None}
    return config.model_copy(update=unset) if unset else config


def parameter_floor(config: FDSConfig) -> dict[str, int]:
    """A lower bound on the model's parameter count from the config alone (the data's width adds
    more), split by the field that drives each part so a refusal can name it."""
    if config.architecture == "conv":
        c = config.conv_channels
        return {  # 4×4 kernels in encoder and decoder; 256-wide heads to and from the latents
            "conv_channels": 32 * sum(a * b for a, b in itertools.pairwise(c)),
            "latent_dim": 3 * 256 * config.latent_dim,
        }
    h = config.hidden_dims or (1,)
    parts = {  # encoder and decoder are mirror images; the posterior has ≤ 2 numbers per latent
        "hidden_dims": 2 * sum(a * b for a, b in itertools.pairwise(h)),
        "latent_dim": 3 * h[-1] * config.latent_dim,
    }
    if config.likelihood == "mixture":  # a weight, mean and scale per component and column
        parts["mixture_components"] = 3 * h[0] * config.mixture_components
    return parts


def _magnitude(n: int, unit: int = 1) -> str:
    """n / unit for a message: 7.68e+10, or 10^400 past what a float holds."""
    return f"{n / unit:.3g}" if n < 10**300 else f"10^{len(str(n // unit)) - 1}"


@functools.cache
def memory_bytes() -> int:
    """This machine's memory, or its container's limit when lower."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume 16 GB
        total = 16 * 2**30
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f"; valid: {', '.join(sorted(options))}"


def reject_unknown(names: Any, valid: Any) -> None:
    """One clear line for the first unknown option, with the closest valid name."""
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}{_suggest(unknown[0], valid)}")


def make_config(**params: Any) -> FDSConfig:
    """Validate parameters into an FDSConfig, turning pydantic's report into one clear line."""
    reject_unknown(params, FDSConfig.model_fields)
    try:
        return FDSConfig(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        # union members and validators add their own names to the location: keep the user's keys
        where = ".".join(str(p) for p in err["loc"] if isinstance(p, int) or "[" not in p)
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid option {where}: {message}" if where else message) from None


MAX_CONFIG_BYTES = 1_000_000  # a config is a screenful of options, not a data file


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file of `option: value`: UTF-8 text, a mapping, every key a name; each failure is
    one line naming the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"config {path} is not a file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config {path} is larger than {MAX_CONFIG_BYTES:,} bytes")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Notepad) is fine
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{line}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests too deeply to be a config") from None
    except (ValueError, OverflowError) as exc:  # a date YAML parses but cannot build: 2001-02-30
        raise ConfigError(f"{path} holds a value YAML cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value, got {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str):
            raise ConfigError(f"{path}: option names are text, got {type(key).__name__} {key!r}")
    return raw


def check_run_keys(params: dict[str, Any]) -> dict[str, Any]:
    """The data arguments of `params`: `data`, `data_root` (each a path or a built-in name) and
    `stream` (true or false)."""
    args = {key: params[key] for key in RUN_KEYS if params.get(key) is not None}
    for key, value in args.items():
        if key == "stream":
            if not isinstance(value, bool):
                raise ConfigError(f"stream must be true or false, got {value!r:.40}")
            continue
        if not isinstance(value, str | Path) or not str(value).strip():
            shown = f"{type(value).__name__} {value!r:.40}"
            raise ConfigError(f"{key} must be a path or a built-in data set name, got {shown}")
    return {key: value if key == "stream" else str(value) for key, value in args.items()}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config into a dict of FDS parameters (plus `data`/`data_root`), validated
    before any work starts; a bad key or value names the file."""
    raw = read_yaml_mapping(path)
    try:
        run_keys = check_run_keys(raw)
        params = {key: value for key, value in raw.items() if key not in RUN_KEYS}
        make_config(**params)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return params | run_keys


def dump_yaml(params: dict[str, Any]) -> str:
    """Resolved config as YAML, tuples written as plain lists so it reads back unchanged."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return yaml.safe_dump(plain(params), sort_keys=False)
