"""Where a keyed model's reconstruction error sits, column by column (issue 12: SLID's full code
reconstructed 2.9 × worse than the `vae`'s, then 1.76 ×; docs/privacy-key.md). One table and
seed per run, the models and sizes of benchmarks/table_hiding.py (every model at batch 128 / lr 1e-3):

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/table_columns.py slid 0 \\
        vae,fds_given,fds_given_open

One line per model: public leakage, R² of the log target, reconstruction MSE, then each column's
squared error of the decoder mean at the posterior mean (summed over its encoded slots, averaged
over the test rows) and the fit's CPU seconds."""

from __future__ import annotations

import sys
import time

import torch
from table_hiding import HIDDEN, LATENT_DIM, TRAINING, Table, _measure, census_table, slid_table

from fds import FDS


def column_errors(model: FDS, rows: object) -> dict[str, float]:
    """Squared error per column of the decoded posterior means, in the encoded space."""
    x = torch.cat(list(model._rows(rows).batches(4096)))
    with torch.no_grad():
        net = model.model_
        err = (net.likelihood.mean(net.decode(net.encode(x).mean)) - x).pow(2)
    out: dict[str, float] = {}
    start = 0
    for name, width in model.codec_.part_widths():
        out[name] = out.get(name, 0.0) + float(err[:, start : start + width].sum(1).mean())
        start += width
    return out


def main(table: Table, seed: int, epochs: int, names: list[str]) -> None:
    base = {"latent_dim": LATENT_DIM, "hidden_dims": HIDDEN, "epochs": epochs, "seed": seed}
    base |= {"verbose": False} | TRAINING
    key = {"preset": "fds", "sensitive": (table.sensitive,), "mmd_given": (table.target,)}
    specs = {"vae": {"preset": "vae"}, "fds_given": key, "fds_given_open": key}
    specs["fds_given_open"] = key | {"private_only": False}
    for name in names:
        started = time.process_time()
        model = FDS(**base, **specs[name]).fit(table.train)
        part = "all" if name == "vae" else "public"
        row = _measure(model, table, part, table.train, table.test, seed)
        figures = {"leakage": row["leakage"], "r2": row["utility_r2"]}
        figures["recon"] = model.reconstruction_mse(table.test)
        figures |= column_errors(model, table.test)
        figures["cpu_s"] = time.process_time() - started
        print(table.name, seed, name, " ".join(f"{k}={v:.4f}" for k, v in figures.items()))


if __name__ == "__main__":
    name, seed_text, models = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    seed = int(seed_text)
    chosen = slid_table(seed) if name == "slid" else census_table(4000, 1500, seed)
    main(chosen, seed, 20 if name == "slid" else 15, models)
