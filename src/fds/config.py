"""Every option of an FDS, validated once: the estimator's parameters, the YAML `--config`, presets.

The YAML file mirrors `FDS(...)`'s keyword arguments one to one, so a user can move a setting between
the CLI and the API without translating it. Unknown keys fail with the closest valid name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fds.errors import ConfigError

Posterior = Literal["deterministic", "gaussian", "noisy"]
Likelihood = Literal["auto", "bernoulli", "gaussian", "gaussian_learned", "mixture"]
Corruption = Literal["gaussian", "masking", "salt_pepper"]
Adversary = Literal["gradient_reversal", "alternating", "none"]
Architecture = Literal["auto", "mlp", "conv", "what_where"]


@dataclass(frozen=True)
class PresetDefault:
    """Marks a field a preset may set: None in the user's config means "the preset's value", and
    `value` is what the field resolves to when the preset does not set it either."""

    value: Any


# A loss weight (or another non-negative amount) a preset may set; 0 (off) unless it does.
PresetAmount = Annotated[float | None, Field(ge=0), PresetDefault(0.0)]

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

    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(gt=0)
    delta: float | None = Field(None, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"
    grad_sample_mode: Literal["ghost", "hooks"] = "ghost"
    noise_seed: int | None = None
    statistics_epsilon: float | None = Field(None, gt=0)


class FDSConfig(BaseModel):
    """All parameters of an FDS model and its training, flat like scikit-learn's estimators."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # model
    preset: str = "vae"
    latent_dim: int = Field(10, ge=1)
    # auto: see fds.models.build.choose_architecture (measured per kind and size of input)
    architecture: Architecture = "auto"
    hidden_dims: tuple[int, ...] = (256, 256)
    conv_channels: tuple[int, ...] = (32, 32, 64, 64)
    posterior: Annotated[Posterior | None, PresetDefault("gaussian")] = None
    noise_std: float = Field(0.1, ge=0)
    likelihood: Likelihood = "auto"
    likelihood_scale: float = Field(1.0, gt=0)
    mixture_components: int = Field(5, ge=2)
    # loss terms, read by the terms registered in fds.objectives (None = the preset's value)
    kl: PresetAmount = None
    free_bits: PresetAmount = None
    kl_warmup_epochs: float = Field(0.0, ge=0)
    tc: PresetAmount = None
    tc_estimator: Literal["mss", "mws"] = "mss"
    factor: PresetAmount = None
    sparsity_l1: PresetAmount = None
    sparsity_kl: PresetAmount = None
    sparsity_target: float = Field(0.05, gt=0, lt=1)
    # α: in a split latent (private_dim > 0) the penalty is between the public and private blocks
    independence: PresetAmount = None
    independence_kind: Literal["hsic", "decorrelation"] = "hsic"
    corruption: Annotated[Corruption | None, PresetDefault(None)] = None
    corruption_level: PresetAmount = None
    # the key: the last `private_dim` latents are the private block, trained to carry `sensitive`
    private_dim: Annotated[int | None, Field(ge=0), PresetDefault(0)] = None
    sensitive: tuple[str, ...] = ()
    censor: PresetAmount = None  # β: weight of the privacy term
    # alternating: the adversary has its own optimizer and the encoder pulls its predictions to the
    # base rates; gradient_reversal: one optimizer, the encoder maximises the adversary's loss;
    # none: no adversary head (the mmd term alone censors the public block)
    adversary: Annotated[Adversary | None, PresetDefault("alternating")] = None
    # MMD between the public codes of each sensitive group and the rest (batch-coupled, so not
    # under DP-SGD): pushes the public block's distribution to be the same for every group
    mmd: PresetAmount = None
    # Ramp the censoring terms (mmd, the private block's spread, the between-block independence,
    # the adversary's pull on the encoder) from 0 to full over these epochs, as DANN ramps its
    # reversal weight: the autoencoder learns the data before the censor reshapes the codes.
    censor_warmup_epochs: float = Field(0.0, ge=0)
    # with mmd: the private block is also pulled to its group means (weight mmd), so it carries
    # the sensitive attributes only and every other factor stays in the public block (utility).
    # auto: on for tables, off for images, whose key encoder cannot see the position and whose key
    # must also carry what the attribute shapes (a sprite's rotation: docs/privacy-key.md)
    private_only: Annotated[bool | Literal["auto"] | None, PresetDefault(False)] = None
    # training
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(20, ge=1)
    max_steps: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    seed: int = 0
    # data
    columns: dict[str, Literal["continuous", "categorical", "binary", "count"]] | None = None
    missing: Literal["error", "impute"] | dict[str, Literal["error", "impute"]] = "error"
    continuous_transform: Literal["standard", "quantile"] = "standard"
    # privacy: DP-SGD; declared bounds and categories replace statistics read from the data
    privacy: DPConfig | None = None
    bounds: dict[str, tuple[float, float]] | None = None
    categories: dict[str, list[Any]] | None = None

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
    def _ordered_bounds(self) -> FDSConfig:
        for name, (lo, hi) in (self.bounds or {}).items():
            if not lo < hi:
                raise ValueError(f"bounds of column {name!r} must be [low, high] with low < high")
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


# The fields a preset may set, each with its value when neither the user nor the preset sets it:
# read from their PresetDefault marks, so a new field is one declaration above.
PRESET_FIELDS: dict[str, Any] = {
    name: mark.value
    for name, field in FDSConfig.model_fields.items()
    for mark in field.metadata
    if isinstance(mark, PresetDefault)
}


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
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"invalid option {where}: {err['msg']}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config into a dict of FDS parameters (plus `data`/`data_root`), validating keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value, got {type(raw).__name__}")
    run_keys = {key: raw.pop(key) for key in ("data", "data_root") if key in raw}
    make_config(**raw)  # validate now, so a bad key is reported before any work starts
    return raw | run_keys


def dump_yaml(params: dict[str, Any]) -> str:
    """Resolved config as YAML, tuples written as plain lists so it reads back unchanged."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return yaml.safe_dump(plain(params), sort_keys=False)
