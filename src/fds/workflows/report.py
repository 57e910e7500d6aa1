"""RUN/report.html: one self-contained page with what a person checks about a trained FDS.

It draws from the run directory (config.yaml, metrics.jsonl, model/, and evaluation.json and
probes.json when the evaluate and probe workflows have written them) and from the run's data, of
which at most `max_rows` rows are used for the figures. Only what exists is shown: no section is
left as an empty placeholder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fds._version import __version__
from fds.data.files import LoadedData, read_data
from fds.data.stream import split_indices
from fds.errors import DataError
from fds.estimator import FDS
from fds.evaluation.disentanglement import factor_latent_mi
from fds.nn.what_where import WhatWhereDecoder
from fds.report import plots
from fds.report.html import (
    Figure,
    Section,
    Table,
    format_value,
    json_node,
    probe_tables,
    render_report,
)
from fds.rundir import (
    ATTACKS_FILE,
    CONFIG_FILE,
    EVALUATION_FILE,
    LEDGER_FILE,
    METRICS_FILE,
    MODEL_DIR,
    PRIVACY_CURVE_FILE,
    PROBES_FILE,
    REPORT_FILE,
    write_text,
)
from fds.workflows.report_curve import curve_section
from fds.workflows.report_key import key_section
from fds.workflows.report_synthesis import synthesis_section

MAX_ROWS = 2000  # rows encoded for the latent maps and the MI heatmap
# rows of the t-SNE map: its Barnes-Hut gradient costs more than linearly in the rows, and 1,000
# took 0.45-0.55 of 2,000's time on the quickstart's codes with the same neighbourhoods in sight
TSNE_POINTS = 1000
TRAVERSAL_VALUES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
MAX_TRAVERSAL_DIMS = 20
MAX_TRAVERSAL_ROWS = 500  # held-out codes that measure each dimension's spread
N_RECONSTRUCTIONS = 10
N_SAMPLES = 50
_OBJECTIVE_WEIGHTS = ("kl", "tc", "factor", "sparsity_l1", "sparsity_kl", "independence")


@dataclass
class _Rows:
    """The rows the figures use: `view` for reconstructions and headline numbers (held out from
    training when the data is the run's own), `sample` for the maps (a seeded subsample)."""

    view: np.ndarray
    sample: np.ndarray
    held_out: bool


def write_report(
    run_dir: str | Path,
    *,
    model: FDS | None = None,
    data: LoadedData | None = None,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
) -> Path:
    """Write `run_dir/report.html` (atomically) and return its path.

    `model` defaults to the run's model/ directory and `data` to the data named in its
    config.yaml. `run_dir` may also be the run's model/ folder.
    """
    run_dir = _resolve_run_dir(Path(run_dir))
    config = _read_config(run_dir)
    if model is None:
        model = FDS.load(run_dir)
    if model.input_kind_ == "multimodal":
        raise DataError(
            f"fds report does not draw multimodal models yet: see {run_dir}/cross_modal.png, "
            "samples.png and `fds evaluate` (docs/multimodal.md)"
        )
    own_data = data is None
    if data is None:
        data = _load_run_data(run_dir, config, model.config_.seed)
    records = _read_metrics(run_dir)
    evaluation = _read_json(run_dir / EVALUATION_FILE)
    probes = _read_json(run_dir / PROBES_FILE)
    attacks = _read_json(run_dir / ATTACKS_FILE)

    rows = _choose_rows(model, data, own_data, seed, max_rows)
    X_view = _take(data.X, rows.view)
    codes = model.transform(_take(data.X, rows.sample))
    colour, colour_name = _colouring(data, rows.sample)
    sections = [
        _training_section(records),
        _reconstruction_section(model, X_view, rows.held_out),
        key_section(model, X_view, evaluation, seed),
        _samples_section(model, X_view, seed),
        _traversal_section(model, X_view),
        _latent_map_section(codes, colour, colour_name, seed),
        _mi_section(data, rows.sample, codes),
        _probe_section(probes),
        synthesis_section(evaluation),
        _evaluation_section(evaluation, run_dir),
        _privacy_section(model.privacy_, _read_json(run_dir / LEDGER_FILE)),
        _attacks_section(attacks),
        curve_section(_read_json(run_dir / PRIVACY_CURVE_FILE)),
    ]
    headline, summary = _summary(model, data, records, X_view, rows, config)
    html = render_report(
        f"FDS report: {run_dir.name}",
        summary,
        headline,
        sections,
        subtitle=f"{model.config_.preset} · {data.source} · run directory {run_dir}",
        footer=f"Written by fds {__version__}. This page is self-contained: it loads nothing "
        "from the network.",
    )
    return write_text(run_dir / REPORT_FILE, html)


# --------------------------------------------------------------------------- inputs


def _resolve_run_dir(path: Path) -> Path:
    if path.name == MODEL_DIR and (path / "manifest.json").is_file():
        return path.parent
    if not path.is_dir():
        raise DataError(f"run not found: {path} does not exist or is not a directory")
    return path


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return config if isinstance(config, dict) else {}


def _load_run_data(run_dir: Path, config: dict[str, Any], seed: int) -> LoadedData:
    spec = config.get("data")
    if spec is None:
        where = "its config.yaml names no data" if config else "it has no config.yaml"
        raise DataError(
            f"cannot find the data of {run_dir}: {where}; pass the data to draw from (--data)"
        )
    try:
        return read_data(spec, seed=seed, root=config.get("data_root"))
    except DataError as exc:
        raise DataError(f"the run's data could not be read ({exc}); pass it with --data") from None


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path}: line {number} is not valid JSON") from None
    return records


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def _choose_rows(model: FDS, data: LoadedData, own_data: bool, seed: int, max_rows: int) -> _Rows:
    n = len(data.X)
    view = np.arange(n)
    held_out = False
    if own_data:  # the run's own data: the validation split was not trained on
        _, val_idx = split_indices(n, model.config_.val_fraction, model.config_.seed)
        if len(val_idx):
            view, held_out = val_idx, True
    rng = np.random.default_rng(seed)
    if len(view) > max_rows:
        view = np.sort(rng.choice(view, max_rows, replace=False))
    sample = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    return _Rows(view, sample, held_out)


def _take(X: Any, rows: np.ndarray) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows].reset_index(drop=True)
    return np.asarray(X[rows])


def _colouring(data: LoadedData, rows: np.ndarray) -> tuple[np.ndarray | None, str]:
    n = len(data.X)
    if data.labels is not None and len(data.labels) == n:
        return np.asarray(data.labels)[rows], "label"
    if data.factors is not None and len(data.factors) == n and data.factors.shape[1]:
        name = str(data.factors.columns[0])
        return data.factors.iloc[rows, 0].to_numpy(), name
    return None, ""


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    X = np.asarray(X)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


# --------------------------------------------------------------------------- sections


def _training_section(records: list[dict[str, Any]]) -> Section:
    section = Section("training", "Training curves")
    if not records or not any(k.startswith(("train_", "val_")) for r in records for k in r):
        return section
    section.figures.append(
        Figure(
            plots.training_curves_png(records),
            "Each loss term per epoch, averaged over the training rows (train) and the held-out "
            "validation rows (val), from metrics.jsonl. nll: reconstruction negative "
            "log-likelihood in nats; elbo: evidence lower bound (higher is better).",
        )
    )
    return section


def _reconstruction_section(model: FDS, X_view: Any, held_out: bool) -> Section:
    which = "held-out rows (not trained on)" if held_out else "rows of the given data"
    section = Section("reconstructions", "Reconstructions")
    if model.input_kind_ == "images":
        originals = np.asarray(X_view[:N_RECONSTRUCTIONS])
        rebuilt = model.inverse_transform(model.transform(originals))
        section.figures.append(
            Figure(
                plots.reconstruction_grid_png(originals, rebuilt),
                f"Top: {len(originals)} {which}; bottom: the decoder mean at their posterior "
                "mean codes.",
            )
        )
        return section
    real = _as_frame(X_view)
    rebuilt = _as_frame(model.inverse_transform(model.transform(X_view)))
    rebuilt.columns = real.columns
    section.figures.append(
        Figure(
            plots.column_comparison_png(real, rebuilt, labels=("original", "reconstruction")),
            f"Per column, {len(real)} {which} against their reconstructions (decoder mean at the "
            "posterior mean codes): histograms for numeric columns, frequencies for categories.",
        )
    )
    return section


def _samples_section(model: FDS, X_view: Any, seed: int) -> Section:
    section = Section("samples", "Samples from the prior")
    if model.input_kind_ == "images":
        section.figures.append(
            Figure(
                plots.image_grid_png(model.sample(N_SAMPLES, seed=seed)),
                f"{N_SAMPLES} images decoded from codes drawn from the prior (seed {seed}).",
            )
        )
        return section
    real = _as_frame(X_view)
    samples = _as_frame(model.sample(len(real), seed=seed))
    samples.columns = real.columns
    section.figures.append(
        Figure(
            plots.column_comparison_png(real, samples),
            f"Per column, {len(real)} real rows against as many rows generated from the prior "
            f"(seed {seed}).",
        )
    )
    return section


def _traversal_codes(model: FDS, X_view: Any) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Codes (dims × values, D): a held-out record's code with one dimension at a time run over
    its range on the held-out codes (their mean ± 3 sd), so every row stays among codes the
    decoder has seen; the dimensions ordered by that spread, the active ones first (an inactive
    one barely moves and is shown last)."""
    codes = model.transform(_take(X_view, np.arange(min(len(X_view), MAX_TRAVERSAL_ROWS))))
    centre, spread = codes.mean(axis=0), codes.std(axis=0)
    dims = [int(d) for d in np.argsort(-spread, kind="stable")[:MAX_TRAVERSAL_DIMS]]
    values = np.asarray(TRAVERSAL_VALUES, dtype=np.float32)
    z = np.tile(codes[0].astype(np.float32), (len(dims), len(values), 1))
    for row, d in enumerate(dims):
        z[row, :, d] = centre[d] + values * spread[d]
    return z.reshape(-1, codes.shape[1]), dims, spread


def _traversal_section(model: FDS, X_view: Any) -> Section:
    z, dims, spread = _traversal_codes(model, X_view)
    n_values = len(TRAVERSAL_VALUES)
    decoded = model.inverse_transform(z)
    public_dim = model.model_.public_dim if model.model_.private_dim else len(spread)
    labels = [f"z{d}{' (key)' if d >= public_dim else ''} sd {spread[d]:.2f}" for d in dims]
    shown = (
        f" The {len(dims)} most active of {model.config_.latent_dim} dimensions are shown."
        if len(dims) < model.config_.latent_dim
        else ""
    )
    start = (
        "the first held-out record's code (posterior mean) with that one dimension set to its "
        "mean over the held-out records' codes plus −3 … +3 times its spread (sd); dimensions are "
        "ordered by that spread, most active first, and those of the private block are marked "
        "(key)"
    )
    section = Section("traversals", "Latent traversals")
    if model.input_kind_ == "images":
        images = np.asarray(decoded).reshape(len(dims), n_values, *np.asarray(decoded).shape[1:])
        png = plots.latent_traversal_png(images, TRAVERSAL_VALUES, labels)
        caption = (
            f"One row per latent dimension: {start}; the images are the decoder means." + shown
        )
    else:
        frame = _as_frame(decoded)
        parts = [
            frame.iloc[i * n_values : (i + 1) * n_values].reset_index(drop=True)
            for i in range(len(dims))
        ]
        png = plots.table_traversal_png(parts, TRAVERSAL_VALUES, labels)
        caption = (
            f"Each panel is one column; each line one latent dimension: {start}. A flat line means "
            "that dimension does not change the column." + shown
        )
    section.figures.append(Figure(png, caption))
    return section


def _latent_map_section(
    codes: np.ndarray, colour: np.ndarray | None, colour_name: str, seed: int
) -> Section:
    section = Section("latent-map", "Latent map")
    if codes.shape[1] < 2 or len(codes) < 5:
        return section
    coloured = f", coloured by {colour_name}" if colour_name else ""
    section.intro = (
        f"Posterior mean codes of {len(codes)} rows{coloured}, projected to two dimensions."
    )
    section.figures.append(
        Figure(
            plots.latent_map_png(codes, colour, method="pca", colour_name=colour_name, seed=seed),
            "PCA: a linear projection; distances and directions are those of the codes.",
            wide=False,
        )
    )
    section.figures.append(
        Figure(
            plots.latent_map_png(
                codes,
                colour,
                method="tsne",
                colour_name=colour_name,
                max_points=TSNE_POINTS,
                seed=seed,
            ),
            f"t-SNE (seed {seed}): neighbourhoods are kept, distances between clusters are not "
            "meaningful.",
            wide=False,
        )
    )
    return section


def _mi_section(data: LoadedData, rows: np.ndarray, codes: np.ndarray) -> Section:
    section = Section("mutual-information", "Factor × latent mutual information")
    factors = data.factors
    if factors is None or len(factors) != len(data.X) or factors.shape[1] == 0:
        return section
    sub = factors.iloc[rows].reset_index(drop=True)
    mi = factor_latent_mi(sub, codes)
    section.figures.append(
        Figure(
            plots.mi_heatmap_png(mi, [str(c) for c in sub.columns]),
            f"Mutual information between each ground-truth factor and each latent dimension "
            f"(posterior means in 20 equal-width bins, {len(sub)} rows), divided by the factor's "
            "entropy: 1 means the dimension determines the factor. A disentangled code has one "
            "dark cell per row, each in a different column.",
        )
    )
    return section


def _probe_section(probes: Any) -> Section:
    section = Section("probes", "Probes: inference on latents")
    if probes is None:
        return section
    section.tables = probe_tables(probes)
    if section.tables:
        section.intro = (
            "Each head is fitted on one split and scored on another, on the latent codes "
            "(latent) and on the raw features (raw) as a baseline (from probes.json)."
        )
    rest = (
        {k: v for k, v in probes.items() if k != "probes"} if isinstance(probes, dict) else probes
    )
    if rest:
        section.data = json_node(rest)
    return section


def _evaluation_section(evaluation: Any, run_dir: Path) -> Section:
    section = Section("evaluation", "Evaluation")
    if evaluation is None:
        return section
    section.intro = "Every figure in evaluation.json (written by `fds evaluate`)."
    section.data = json_node(evaluation, base=run_dir)
    return section


def _privacy_section(privacy: Any, ledger: Any) -> Section:
    """DP-SGD's spent (ε, δ) from manifest.json and the privacy ledger, with what they cover."""
    section = Section("privacy", "Privacy")
    if privacy is None and ledger is None:
        return section
    section.intro = (
        "Differential privacy as computed by the accountant (see docs/privacy.md for what each "
        "guarantee covers and what it does not)."
        if privacy is not None
        else "This model was trained without DP-SGD: its weights carry no DP guarantee."
    )
    section.data = json_node({"training": privacy, "ledger": ledger})
    return section


def _attacks_section(attacks: Any) -> Section:
    """Privacy attacks from attacks.json (`fds attack`), each figure beside its baseline."""
    from fds.workflows.attack import headline as attack_headline

    section = Section("attacks", "Privacy attacks")
    if not isinstance(attacks, dict) or not attacks:
        return section
    section.intro = (
        "Attacks by `fds attack` (attacks.json): membership inference on training vs held-out "
        "rows, distance to closest record and DOMIAS on the model's samples, and model inversion "
        "from released latents. Each figure is shown beside what an attacker gets by chance."
    )
    rows = [[name, value] for name, value in attack_headline(attacks).items()]
    if rows:
        section.tables = [Table([[("attack", 1, 1), ("result (baseline)", 1, 1)]], rows)]
    section.data = json_node(attacks)
    return section


# --------------------------------------------------------------------------- summary


def _summary(
    model: FDS,
    data: LoadedData,
    records: list[dict[str, Any]],
    X_view: Any,
    rows: _Rows,
    config: dict[str, Any],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    cfg = model.config_
    which = "held-out" if rows.held_out else "data"
    headline = [
        (f"{which} ELBO (nats per example)", format_value(float(model.score(X_view)))),
        (f"{which} reconstruction MSE", format_value(model.reconstruction_mse(X_view))),
    ]
    last = records[-1] if records else {}
    for key in ("train_loss", "val_loss"):
        if isinstance(last.get(key), int | float):
            headline.append((f"final {key.replace('_', ' ')}", format_value(last[key])))
    weights = ", ".join(
        f"{name} {format_value(getattr(cfg, name))}"
        for name in _OBJECTIVE_WEIGHTS
        if getattr(cfg, name, 0)
    )
    if isinstance(data.X, pd.DataFrame):
        shape = f"{len(data.X)} rows × {data.X.shape[1]} columns"
    else:
        shape = f"{len(data.X)} × " + " × ".join(str(s) for s in np.shape(data.X)[1:])
    summary = [
        ("model", f"{cfg.preset} ({model.input_kind_}), {cfg.latent_dim} latent dimensions"),
        ("objective weights", weights or "reconstruction only"),
        ("network", _network(model)),
        ("data", f"{data.source}: {shape}"),
        (
            "rows in the figures",
            f"{len(rows.view)} {'held-out ' if rows.held_out else ''}rows for reconstructions "
            f"and headline numbers; {len(rows.sample)} rows for the latent maps",
        ),
        ("epochs trained", str(len(records)) if records else "—"),
    ]
    if records:
        seconds = sum(r.get("seconds", 0) or 0 for r in records)
        summary.append(("training time", f"{seconds:.1f} s, {last.get('step', '—')} steps"))
    summary.append(("seed", str(cfg.seed)))
    if "data_root" in config:
        summary.append(("data root", str(config["data_root"])))
    return headline, summary


def _network(model: FDS) -> str:
    cfg, net = model.config_, model.model_
    if model.encoder is not None or model.decoder is not None:
        layers = "custom encoder/decoder"
    elif net.convolutional:
        layers = "conv channels " + ", ".join(str(c) for c in cfg.conv_channels)
    elif isinstance(net.decoder, WhatWhereDecoder):
        layers = "what/where (MLP hidden " + ", ".join(str(h) for h in cfg.hidden_dims) + ")"
    else:
        layers = "MLP hidden " + ", ".join(str(h) for h in cfg.hidden_dims)
    likelihood = type(net.likelihood).__name__
    if cfg.likelihood != "auto":
        likelihood = f"{cfg.likelihood} ({likelihood})"
    return f"{layers}; {cfg.posterior} posterior; {likelihood} likelihood"
