"""Privacy attacks on a well-trained and an overfit VAE (issue 6): does the attack suite see the
difference?

Two FDS `vae` models on the census-like table (`fds.data.datasets.make_census`, mixed columns):

- ``vae``: --n-large rows (default 5 000), --epochs epochs (default 10), hidden 128-128, 10% held
  out (the preset's defaults otherwise). Little chance to memorise: attacks should sit near chance.
- ``overfit vae``: --n-small rows (default 300), --overfit-epochs (default 1000), hidden 256-256,
  free bits 0, batch 16, half the rows held out. Memorises its training rows: attacks should beat chance.

Each gets `fds.workflows.attack.attack_run` (what `fds attack` runs): membership inference on
training rows vs as many held-out rows (ELBO threshold, Hilprecht reconstruction distance and
Monte Carlo ε-ball; AUC, TPR at 1% FPR), DCR and DOMIAS on the model's samples, and model inversion
(an attacker with held-out rows and their latents fits its own decoder) beside the owner's MSE.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attacks.py [--quick] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import emit_json, environment, print_table

from fds import FDS
from fds.data.datasets import make_census
from fds.data.files import LoadedData
from fds.workflows.attack import attack_run


def _models(args: argparse.Namespace) -> list[tuple[str, int, dict[str, Any]]]:
    base = {"preset": "vae", "latent_dim": 8, "batch_size": 64, "verbose": False, "seed": args.seed}
    return [
        (
            "vae",
            args.n_large,
            base | {"hidden_dims": [128, 128], "epochs": args.epochs, "val_fraction": 0.1},
        ),
        (
            "overfit vae",
            args.n_small,
            base
            | {
                "hidden_dims": [256, 256],
                "epochs": args.overfit_epochs,
                "val_fraction": 0.5,
                "free_bits": 0.0,
                "batch_size": 16,
            },
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-large", type=int, default=5000)
    parser.add_argument("--n-small", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--overfit-epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    args = parser.parse_args()
    if args.quick:
        args.n_large, args.n_small, args.epochs, args.overfit_epochs = 1000, 200, 3, 300

    rows, results = [], {}
    for name, n, params in _models(args):
        table = make_census(n=n, seed=args.seed)
        started = time.perf_counter()
        model = FDS(**params).fit(table)
        trained = time.perf_counter() - started
        out = attack_run(model, LoadedData(table, "census"), seed=args.seed)
        mem, syn, inv = out["membership"], out["synthetic"], out["inversion"]
        rows.append(
            [
                name,
                n,
                params["epochs"],
                mem["loss"]["auc"],
                mem["loss"]["tpr_at_1pct_fpr"],
                mem["reconstruction"]["auc"],
                mem["monte_carlo"]["auc"],
                syn["dcr"]["share_closer_to_train"],
                syn["domias"]["auc"],
                inv["attacker_mse"],
                inv["owner_mse"],
                inv["baseline_mse"],
                round(trained, 1),
            ]
        )
        results[name] = {"rows": n, "params": params, "train_seconds": trained} | out
    print(
        "Attacks on census (chance: AUC 0.5, TPR@1%FPR 0.01, DCR share 0.5; inversion: "
        "owner's MSE and the mean predictor's)\n"
    )
    print_table(
        [
            "model",
            "rows",
            "epochs",
            "loss AUC",
            "loss TPR@1%",
            "recon AUC",
            "MC AUC",
            "DCR share",
            "DOMIAS AUC",
            "inv MSE",
            "owner MSE",
            "mean MSE",
            "train s",
        ],
        rows,
    )
    emit_json(
        {
            "benchmark": "attacks",
            "quick": args.quick,
            "seed": args.seed,
            "environment": environment(),
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
