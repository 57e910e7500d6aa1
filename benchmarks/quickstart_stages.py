"""CPU seconds of the stages after training in `fds quickstart`: evaluation (per group) and the
report, on a copy of a trained quickstart run, in this checkout or another's source.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quickstart_stages.py \\
        --run runs/quickstart --out /tmp/stages

Process time, one thread, so a busy machine slows it without changing the figures much; run the
same trained run under two sources (`PYTHONPATH=/other/checkout/src`) side by side to compare.
The evaluation's group seconds are process time too. Prints one JSON line with the seconds and the
leakage and key figures, which a change that only saves time must leave as they were.
"""

from __future__ import annotations

import argparse
import shutil
import time
import types
from pathlib import Path

import torch
from _common import emit_json

from fds.workflows import evaluate
from fds.workflows.quickstart import IWAE_K, REAL_IMAGES, UTILITY_TARGET
from fds.workflows.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a trained `fds quickstart` run directory")
    parser.add_argument("--out", required=True, help="where the copy is evaluated (replaced)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    evaluate.time = types.SimpleNamespace(perf_counter=time.process_time)  # groups in CPU s
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    skip = shutil.ignore_patterns("evaluation.json", "report.html", "checkpoints")
    shutil.copytree(args.run, out, ignore=skip)
    started = time.process_time()
    report, _ = evaluate.evaluate_path(
        out / "model",
        utility_target=UTILITY_TARGET,
        iwae_k=IWAE_K,
        threads=1,
        real_images=REAL_IMAGES,
    )
    evaluated = time.process_time()
    write_report(out)
    reported = time.process_time()
    shape = report["leakage"]["attributes"]["factor:shape"]
    key = report["key"]["attributes"]["factor:shape"]
    emit_json(
        {
            "benchmark": "quickstart_stages",
            "evaluate_cpu_s": round(evaluated - started, 1),
            "report_cpu_s": round(reported - evaluated, 1),
            "groups_cpu_s": report["seconds"],
            "public": [shape["public"][k] for k in ("best_accuracy", "best_auc", "lower_bound")],
            "private": [shape["private"][k] for k in ("best_accuracy", "best_auc")],
            "necessary": shape["necessary_accuracy"],
            "utility": report["leakage"]["utility"]["utility"],
            "key": {k: v for k, v in key.items() if isinstance(v, float)},
        }
    )


if __name__ == "__main__":
    main()
