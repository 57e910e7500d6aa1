"""One site: its rows (a partition in simulation, its own file in deployment) and what it does
with them — fit its local schema, train the received model for a few epochs with the ordinary
`Trainer`, and validate the global model on its held-out rows.

Rows never leave this module's process; only weights, counts and metrics are returned.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from fds.config import FDSConfig, make_config, with_training_defaults
from fds.data.codec import Codec, input_kind_of
from fds.data.files import read_data
from fds.data.image_codec import ImageCodec
from fds.data.partition import partition, site_names
from fds.data.stream import Rows, split_indices
from fds.data.tabular import TabularCodec
from fds.errors import DataError
from fds.models import FactorizedAutoencoder, build_model
from fds.training.schedule import lr_at
from fds.training.trainer import Trainer


@dataclass(frozen=True, eq=False)
class SiteData:
    name: str
    X: np.ndarray | pd.DataFrame


# ----------------------------------------------------------------------------- rows of a site
def site_data(node_config: dict[str, Any], plan: dict[str, Any]) -> SiteData:
    """Deployment: node_config `data-path` (and optional `site-name`). Simulation: Flower's
    `partition-id` picks this site's rows of the one data set named in the plan."""
    if "data-path" in node_config:
        return _file_site(
            str(node_config["data-path"]), str(node_config.get("site-name", "")), plan.get("column")
        )
    if "partition-id" not in node_config:
        raise DataError("this SuperNode has no data: start it with --node-config \"data-path='…'\"")
    return _partition_site(int(node_config["partition-id"]), json.dumps(plan, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _file_site(path: str, name: str, column: str | None) -> SiteData:
    data = read_data(path)
    X = data.X
    if column and isinstance(X, pd.DataFrame) and column in X.columns:
        X = X.drop(columns=[column])
    return SiteData(name or path, X)


@functools.lru_cache(maxsize=16)
def _partition_site(index: int, plan_json: str) -> SiteData:
    """Cached per process: Ray keeps one actor per CPU and calls it for many rounds."""
    parts, names, X = _split_once(plan_json)
    if index >= len(parts):
        raise DataError(f"partition-id {index} but the plan has {len(parts)} sites")
    rows = parts[index]
    X_site = X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]
    return SiteData(names[index], X_site)


@functools.lru_cache(maxsize=2)
def _split_once(plan_json: str) -> tuple[list[np.ndarray], list[str], Any]:
    """The data set read and split once per process: with 100 sites on 2 actors, each actor
    serves dozens of sites, and reading the data per site would dominate a round."""
    return split_sites(json.loads(plan_json))


def split_sites(plan: dict[str, Any]) -> tuple[list[np.ndarray], list[str], Any]:
    """(row indices per site, site names, features) of the data set the plan names."""
    data = read_data(plan["data"], seed=plan["seed"], root=plan.get("data_root"))
    X, column_values, labels = data.X, None, data.labels
    column, label_column = plan.get("column"), plan.get("label_column")
    if isinstance(X, pd.DataFrame):
        for name in (column, label_column):
            if name and name not in X.columns:
                raise DataError(
                    f"the data has no column {name!r}; columns: {', '.join(map(str, X.columns))}"
                )
        if label_column:
            labels = X[label_column].to_numpy()
        if column:
            column_values = X[column].to_numpy()
            X = X.drop(columns=[column])
    elif plan["partition"] == "column":
        raise DataError("partition column needs a table (images have no columns)")
    parts = partition(
        len(X),
        plan.get("sites"),
        plan["partition"],
        labels=labels,
        column=column_values,
        alpha=plan["alpha"],
        seed=plan["seed"],
    )
    return parts, site_names(plan["partition"], len(parts), column_values), X


# ----------------------------------------------------------------------------- local work
def fit_local_codec(X: Any, config: FDSConfig) -> Codec:
    if input_kind_of(X) == "images":
        return ImageCodec.fit(X)
    return TabularCodec.fit(
        X, kinds=config.columns, missing=config.missing, transform=config.continuous_transform
    )


def site_rows(X: Any, codec: Codec, config: FDSConfig) -> tuple[Rows, Rows | None]:
    """This site's train and validation rows, encoded with the shared codec; the split depends
    on the model's seed only, so a site validates on the same rows every round."""
    if isinstance(codec, ImageCodec):
        source, encode = X, codec.encode
    else:
        source, encode = codec.encode(X), None
    train_idx, val_idx = split_indices(len(source), config.val_fraction, config.seed)
    if len(train_idx) < 1:
        raise DataError("this site has no training rows")
    val = Rows(source, val_idx, encode) if len(val_idx) else None
    return Rows(source, train_idx, encode), val


def site_config(params: dict[str, Any]) -> FDSConfig:
    """A site's training config: the federated figures were measured at the non-table batch size
    and learning rate, so an unset one takes those, not the table defaults
    (fds.config.TRAINING_DEFAULTS)."""
    return with_training_defaults(make_config(**params).resolved(), "other")


def build_site_model(
    config: FDSConfig, codec: Codec, state: dict[str, torch.Tensor]
) -> FactorizedAutoencoder:
    chw = codec.chw if isinstance(codec, ImageCodec) else None
    model = build_model(config, codec.blocks, chw)
    model.load_state_dict(state)
    return model


def proximal_term(global_state: dict[str, torch.Tensor], mu: float) -> Any:
    """FedProx (Li et al. 2020): μ/2·‖w − w_global‖² over the trained weights."""
    anchors = {k: v.detach().clone() for k, v in global_state.items()}

    def term(model: FactorizedAutoencoder) -> torch.Tensor:
        total = torch.zeros(())
        for name, weight in model.named_parameters():
            if name in anchors:
                total = total + (weight - anchors[name]).pow(2).sum()
        return 0.5 * mu * total

    return term


def round_params(params: dict[str, Any], server_round: int, rounds: int) -> dict[str, Any]:
    """The model options of one round, with `lr_schedule` spanning the rounds: the round trains at
    the schedule's value at its midpoint, held constant through the round.

    Why: each round is a fresh `Trainer` run of `local_epochs`, so a schedule applied inside it
    would restart every round (cosine would decay to zero and jump back, each round) instead of
    decaying once over the federation, as it does over the epochs of pooled training."""
    config = site_config(params)  # the learning rate a site trains at when none is set
    lr = lr_at(2 * server_round - 1, 2 * rounds, config.lr, config.lr_schedule)
    return params | {"lr": lr, "lr_schedule": "constant"}


def epoch_share(n: int, local_epochs: float, server_round: int, seed: int) -> np.ndarray | None:
    """Positions (of a site's n training rows) that round `server_round` trains on when
    `local_epochs` is 1/k of an epoch; None for whole epochs (all rows).

    Why: more rounds of fewer local steps at the same data budget. The rows are shuffled once per
    pass of k rounds (by `seed`, which must not change from round to round, and the pass) and
    round r takes the ((r − 1) mod k)-th of k nearly equal parts, so every row is visited once in
    each pass and the site needs no state between rounds."""
    if local_epochs >= 1:
        return None
    k = round(1 / local_epochs)
    passes, part = divmod(server_round - 1, k)
    order = np.random.default_rng([seed, passes]).permutation(n)
    return np.sort(np.array_split(order, k)[part])


def train_locally(
    site: SiteData,
    params: dict[str, Any],
    codec: Codec,
    state: dict[str, torch.Tensor],
    *,
    epochs: float,
    seed: int,
    mu: float = 0.0,
    optimizer_state: dict[int, dict[str, torch.Tensor]] | None = None,
    server_round: int = 1,
    share_seed: int = 0,
) -> tuple[dict[str, torch.Tensor], dict[str, float], int]:
    """`epochs` of the ordinary Trainer from the global weights; (weights, metrics, n_train).

    `optimizer_state` (a dict, filled in place): the site's Adam moments, carried from its last
    round into this one instead of starting Adam afresh each round. `epochs` below 1 (1/k):
    round `server_round` trains on its share of the rows (`epoch_share`, shuffled by
    `share_seed`); n_train counts that share, so the server weighs the sites by the rows they
    trained on this round."""
    train, _ = site_rows(site.X, codec, make_config(**params))
    share = epoch_share(len(train), epochs, server_round, share_seed)
    if share is not None:
        train = Rows(train.source, train.index[share], train.encode, train.attributes)
    whole = max(1, int(epochs))
    config = site_config(params | {"epochs": whole, "seed": seed, "max_steps": None})
    torch.manual_seed(seed)
    model = build_site_model(config, codec, state)
    extra = proximal_term(state, mu) if mu > 0 else None
    trainer = Trainer(model, config, train, None, show_progress=False, extra_loss=extra)
    keep = optimizer_state is not None and config.privacy is None
    if keep and optimizer_state:
        saved = trainer.optimizers["model"].state_dict()
        trainer.optimizers["model"].load_state_dict(saved | {"state": optimizer_state})
    history = trainer.fit()
    if keep:
        optimizer_state.clear()
        optimizer_state.update(trainer.optimizers["model"].state_dict()["state"])
    last = history[-1]
    metrics = {"train_loss": float(last["train_loss"])}
    spent = getattr(trainer, "privacy", None)  # DP-SGD at the site (config.privacy), if enabled
    if spent:
        metrics |= {"dp_epsilon": float(spent["epsilon"]), "dp_delta": float(spent["delta"])}
    return {k: v.detach() for k, v in model.state_dict().items()}, metrics, len(train)


def evaluate_locally(
    site: SiteData, params: dict[str, Any], codec: Codec, state: dict[str, torch.Tensor]
) -> tuple[dict[str, float], int]:
    """Validation loss and ELBO of the global weights on this site's held-out rows."""
    config = site_config(params)
    train, val = site_rows(site.X, codec, config)
    rows = val if val is not None else train
    model = build_site_model(config, codec, state)
    trainer = Trainer(model, config, train, None, show_progress=False)
    metrics = trainer.validate(rows)
    return {k: float(v) for k, v in metrics.items()}, len(rows)


@torch.no_grad()
def code_moments(
    site: SiteData, params: dict[str, Any], codec: Codec, state: dict[str, torch.Tensor]
) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, Σz, Σzzᵀ) of the codes of this site's training rows: what a deterministic model needs
    to sample (a Gaussian fitted to the codes) without the codes leaving the site."""
    config = make_config(**params).resolved()
    train, _ = site_rows(site.X, codec, config)
    model = build_site_model(config, codec, state).eval()
    codes = torch.cat([model.encode(x).mean for x in train.batches(1024)]).double()
    return len(codes), codes.sum(0).numpy(), (codes.T @ codes).numpy()
