"""The leakage estimator's CPU cost and figures, this checkout's against a git revision's, on the
same codes in one process (so load on a shared machine hits both alike).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/leakage_cost.py \\
        --model runs/quickstart --block public --seeds 0,1,2 --reference 772a268

The codes are the run's posterior means cut into its blocks (`fds.workflows.leakage.block_codes`),
fitted on the model's training rows and scored on its held-out rows, as `fds evaluate` does. The
reference estimator is `src/fds/privacy/{leakage,mlp_ensemble}.py` at `--reference`, loaded
from git. Prints one line per seed and estimator, then one JSON line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import emit_json

from fds.privacy import leakage as current
from fds.workflows.evaluate import load_run
from fds.workflows.leakage import attacker_rows, block_codes
from fds.workflows.probe import resolve_values

ROOT = Path(__file__).resolve().parents[1]


def reference_estimator(revision: str) -> types.ModuleType:
    """`fds.privacy.leakage` as it was at `revision`, with that revision's MLP ensemble."""
    modules = {}
    for name in ("mlp_ensemble", "leakage"):
        source = subprocess.run(
            ["git", "show", f"{revision}:src/fds/privacy/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = source.replace(
            "from fds.privacy.mlp_ensemble import", "from _ref_mlp_ensemble import"
        )
        module = types.ModuleType(f"_ref_{name}")
        sys.modules[module.__name__] = module
        exec(compile(source, f"{revision}:{name}.py", "exec"), module.__dict__)
        modules[name] = module
    return modules["leakage"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run directory with a private block")
    parser.add_argument("--block", default="public", choices=("public", "private"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--reference", default="772a268", help="git revision to compare with")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _, data = load_run(args.model, None, None)
    train, test, _ = attacker_rows(model, len(data.X), 0)
    z = block_codes(model, data.X, (args.block,))[args.block]
    s = np.asarray(resolve_values(data, model.sensitive_[0].name, "sensitive attribute"))
    estimators = {"reference": reference_estimator(args.reference), "current": current}
    rows: list[dict[str, Any]] = []
    for seed in (int(x) for x in args.seeds.split(",")):
        for name, estimator in estimators.items():
            started = time.process_time()
            r = estimator.attribute_leakage(z[train], s[train], z[test], s[test], seed=seed)
            cpu = time.process_time() - started
            rows.append(
                {"seed": seed, "estimator": name, "cpu_seconds": round(cpu, 2)}
                | {k: r[k] for k in ("best_accuracy", "best_auc", "best_attacker", "lower_bound")}
            )
            print(
                f"seed {seed} {name:9s} best accuracy {r['best_accuracy']:.3f} AUC "
                f"{r['best_auc']:.3f} ({r['best_attacker']}), {cpu:.1f} CPU s",
                flush=True,
            )
    emit_json({"benchmark": "leakage_cost", "block": args.block, "runs": rows})


if __name__ == "__main__":
    main()
