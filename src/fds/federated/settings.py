"""The `federated:` section of fed.yaml, validated once, beside the usual FDS model options.

fed.yaml = the keys of `fds train --config` (model and training options, `data`, `data_root`)
plus `federated:`; unknown keys anywhere fail with one line naming the key, and the strategy's
name and parameters are checked against `STRATEGIES` here, before any round runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fds.config import FDSConfig, make_config, read_yaml_mapping, reject_unknown
from fds.errors import ConfigError
from fds.federated.compression import parse_compression
from fds.rundir import split_run_params


class ServerDP(BaseModel):
    """Flower's server-side fixed clipping: each site's update clipped to `clipping_norm` (L2 over
    all weights), Gaussian noise of std noise_multiplier·clipping_norm/sampled_sites on the mean."""

    model_config = ConfigDict(extra="forbid")

    noise_multiplier: float = Field(gt=0)
    clipping_norm: float = Field(gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)


class SecAgg(BaseModel):
    """Flower's SecAggPlusWorkflow options (floats: shares of the sampled sites / of the shares)."""

    model_config = ConfigDict(extra="forbid")

    num_shares: int | float = Field(1.0, gt=0)
    reconstruction_threshold: int | float = Field(0.67, gt=0)
    clipping_range: float = Field(8.0, gt=0)
    quantization_range: int = Field(4194304, gt=0)


class FederatedSettings(BaseModel):
    """How the sites are formed and how the rounds run."""

    model_config = ConfigDict(extra="forbid")

    sites: int | None = Field(10, ge=1)
    partition: Literal["iid", "dirichlet", "column"] = "iid"
    alpha: float = Field(0.5, gt=0)
    column: str | None = None
    label_column: str | None = None
    rounds: int = Field(5, ge=1)
    # a whole number of epochs per round, or 1/k of one (0.5, 0.25, …): the site then trains on
    # the next k-th of its shuffled rows each round, so each row is visited once every k rounds
    local_epochs: float = Field(1.0, gt=0)
    strategy: str = "fedavg"
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    min_sites: int = Field(2, ge=1)
    fraction: float = Field(1.0, gt=0, le=1)
    # share of the sites that validate the global model each round (at least min_sites); below 1
    # for many sites, where every site validating every round would dominate the round's time
    fraction_evaluate: float = Field(1.0, gt=0, le=1)
    dp: ServerDP | None = None
    secagg: SecAgg | None = None
    seed: int | None = None
    timeout: float = Field(600.0, gt=0)
    # uplink compression of the sites' updates (fds.federated.compression): none | float16 |
    # topk:FRACTION, with error feedback kept at each site
    compression: str = "none"
    # each site keeps its Adam moments from round to round (in its Flower context, never sent)
    # instead of restarting Adam at every round
    keep_optimizer_state: bool = False
    # a model directory (or run directory) trained centrally, e.g. on public data: the server's
    # initial global model instead of a random one (fds.federated.warm checks it fits)
    init_model: str | None = None


def make_settings(**params: Any) -> FederatedSettings:
    """Validate the `federated:` mapping, with pydantic's report turned into one clear line."""
    reject_unknown(params, FederatedSettings.model_fields)
    if isinstance(params.get("dp"), dict):
        reject_unknown(params["dp"], ServerDP.model_fields)
    secagg = params.get("secagg")
    if secagg is True:
        params = params | {"secagg": {}}
    elif secagg is False:
        params = params | {"secagg": None}
    elif isinstance(secagg, dict):
        reject_unknown(secagg, SecAgg.model_fields)
    try:
        settings = FederatedSettings(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "federated"
        raise ConfigError(f"invalid option federated.{where}: {err['msg']}") from None
    if settings.secagg is not None and (settings.strategy.lower() != "fedavg" or settings.dp):
        raise ConfigError(
            "federated.secagg: Flower 1.42's SecAgg+ runs only in the legacy workflow with FedAvg "
            "(a sum cannot feed a median, Krum or DP clipping of single updates): use strategy "
            "fedavg without dp; see docs/federated.md"
        )
    if settings.keep_optimizer_state and settings.secagg is not None:
        raise ConfigError(
            "federated.keep_optimizer_state cannot be combined with secagg: SecAgg+ rounds run "
            "in Flower's legacy workflow, where a site keeps no state between rounds"
        )
    if parse_compression(settings.compression).lossy and settings.secagg is not None:
        raise ConfigError(
            "federated.compression cannot be combined with secagg: SecAgg+ sums the full "
            "quantized updates; use compression: none"
        )
    check_local_epochs(settings.local_epochs)
    if settings.partition == "column" and not settings.column:
        raise ConfigError("federated.partition is column but federated.column is not set")
    check_strategy(settings)
    return settings


def check_local_epochs(epochs: float) -> None:
    """Whole epochs, or 1/k of one for an integer k ≥ 2: a share of an epoch that does not
    divide it would leave rows unvisited at a different rate from one pass to the next."""
    whole = epochs >= 1 and float(epochs).is_integer()
    share = epochs < 1 and abs(1 / epochs - round(1 / epochs)) < 1e-6
    if not (whole or share):
        raise ConfigError(
            f"federated.local_epochs must be a whole number of epochs or 1/k of one (0.5, 0.25, "
            f"…), got {epochs}"
        )


# the server optimizers of Reddi et al. 2021 (Adaptive Federated Optimization): server lr `eta`,
# adaptivity `tau`; `eta_l` is only reported, the sites' own optimizer is the model's
_FEDOPT: dict[str, type] = {
    "eta": float,
    "eta_l": float,
    "beta_1": float,
    "beta_2": float,
    "tau": float,
}
# name → (Flower class name, the parameters a user may set, with their types)
STRATEGIES: dict[str, tuple[str, dict[str, type]]] = {
    "fedavg": ("FedAvg", {}),
    "fedprox": ("FedProx", {"proximal_mu": float}),
    "fedadam": ("FedAdam", _FEDOPT),
    "fedyogi": ("FedYogi", _FEDOPT),
    "fedadagrad": ("FedAdagrad", {"eta": float, "eta_l": float, "tau": float}),
    "fedavgm": ("FedAvgM", {"server_learning_rate": float, "server_momentum": float}),
    "fedmedian": ("FedMedian", {}),
    "fedtrimmedavg": ("FedTrimmedAvg", {"beta": float}),
    "krum": ("Krum", {"num_malicious_nodes": int}),
}
# Server-side DP calibrates noise to the sensitivity of a plain mean of clipped updates: only the
# strategies whose aggregation is FedAvg's (FedProx changes the clients' loss, not the mean).
DP_STRATEGIES = ("fedavg", "fedprox")


def check_strategy(settings: FederatedSettings) -> None:
    """Unknown name, unknown parameter, wrong type or DP with a non-mean strategy → ConfigError."""
    name = settings.strategy.lower()
    if name not in STRATEGIES:
        reject_unknown([name], STRATEGIES)
    _, allowed = STRATEGIES[name]
    params = settings.strategy_params
    for key, value in params.items():
        reject_unknown([key], allowed)
        kind = allowed[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"federated.strategy_params.{key} must be a number, got {value!r}")
        if kind is int and int(value) != value:
            raise ConfigError(f"federated.strategy_params.{key} must be an integer, got {value}")
        if value < 0:
            raise ConfigError(f"federated.strategy_params.{key} must be ≥ 0, got {value}")
    if name == "fedtrimmedavg" and not params.get("beta", 0.2) < 0.5:
        raise ConfigError("federated.strategy_params.beta must be below 0.5 (the cut per side)")
    if settings.dp is not None and name not in DP_STRATEGIES:
        raise ConfigError(
            f"federated.dp (server-side clipping + noise) needs a mean aggregation "
            f"({', '.join(DP_STRATEGIES)}), not {settings.strategy!r}"
        )
    if settings.min_sites > (settings.sites or settings.min_sites):
        raise ConfigError(
            f"federated.min_sites = {settings.min_sites} exceeds sites = {settings.sites}"
        )


def with_overrides(settings: FederatedSettings, **changes: Any) -> FederatedSettings:
    """`settings` with the options a command-line flag sets (None = keep), validated again."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return settings
    return make_settings(**(settings.model_dump(exclude_none=True) | changes))


def load_federated_yaml(path: str | Path) -> tuple[dict[str, Any], FederatedSettings]:
    """(model parameters incl. `data`/`data_root`, federated settings) from fed.yaml."""
    raw = read_yaml_mapping(path)
    federated = raw.pop("federated", None) or {}
    if not isinstance(federated, dict):
        raise ConfigError(f"{path}: `federated:` must be a mapping of option: value")
    config = model_config(raw)  # a bad model key is reported before any work starts
    settings = make_settings(**federated)
    if config.privacy is not None and settings.strategy.lower() == "fedprox":
        # the proximal term reads the weights, not the examples: DP-SGD's per-example clipping
        # has no place for it
        raise ConfigError(
            "federated.strategy fedprox cannot be combined with client-side DP-SGD (privacy): "
            "use fedavg"
        )
    if config.privacy is not None and settings.keep_optimizer_state:
        # each round is a fresh DP-SGD run whose accounting starts from its own optimizer
        raise ConfigError(
            "federated.keep_optimizer_state cannot be combined with client-side DP-SGD "
            "(privacy): set it to false"
        )
    if config.private_dim:
        raise ConfigError(
            f"preset {config.preset!r} has a private block (private_dim={config.private_dim}), "
            "which federated runs do not train yet: use another preset or private_dim: 0"
        )
    return raw, settings


def model_config(params: dict[str, Any]) -> FDSConfig:
    """The resolved FDSConfig of the model part of fed.yaml (`data`/`data_root` set aside).

    Tables default to `continuous_transform: standard`: its mean and sd pool exactly from per-site
    summaries, where quantiles and the bounded transform's median scale do not."""
    model_params = split_run_params(params)[0]
    model_params.setdefault("continuous_transform", "standard")
    config = make_config(**model_params).resolved()
    if config.ema_decay:
        # each site returns the weights it trained, and the server averages those; a moving
        # average at a site would be what it returns, never what it goes on training
        raise ConfigError(
            f"ema_decay={config.ema_decay} is not supported in federated training: the sites "
            "send the weights they trained and the server averages them; leave ema_decay at 0"
        )
    return config
