"""Sealing and opening the key (issue 13): rows/s of `.fdsz` files end to end.

An `fds` preset model (census, sensitive `sex`, latent_dim 10 = 8 public + 2 private, MLP
256-256) is trained briefly (not timed: the figure does not depend on its quality). Each repeat
then times, on `--rows` census rows (default 20,000), with the keys read from a `fds keys new`
directory as the CLI reads them:

- seal: `FDS.transform(X, seal=keys)` (encode, pack the private block feature-major into CKKS
  ciphertexts of 4,096 slots under public.ctx) and `SealedLatents.save` (the .fdsz file);
- open: `SealedLatents.load` (framing and sha256) and `FDS.inverse_transform(sealed, keys=keys)`
  (decrypt with secret.ctx, decode to a DataFrame);
- open without keys: load and decode the public block alone (public-only records);
- beside them, the same without sealing: `transform` + `np.save`, `np.load` + `inverse_transform`.

Reported: rows/s of each (median over repeats), the file's bytes per row, and the largest
absolute difference between the opened latents and the plain ones (CKKS noise, in code units).
Goal: seal and open ≥ 20,000 rows/s each; error ≤ 1e-3. CKKS: N = 8192, primes [60, 40, 60],
scale 2**40 (128-bit security).

    .venv/bin/python benchmarks/seal.py [--rows 20000] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import CpuPressure, emit_json, environment, median, print_table, wait_for_idle

from fds import FDS
from fds.data.datasets import make_census
from fds.privacy.he import HEParams, SealedLatents, create_context, save_keys

GOAL_RATE, GOAL_ERROR = 20_000.0, 1e-3


def timed(step: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def one_repeat(model: FDS, X: Any, keys: Path, folder: Path) -> dict[str, Any]:
    sealed_path, plain_path = folder / "shared.fdsz", folder / "latents.npy"

    def seal() -> None:
        model.transform(X, seal=keys).save(sealed_path, overwrite=True)

    def open_keyed() -> Any:
        return model.inverse_transform(SealedLatents.load(sealed_path), keys=keys)

    def open_public() -> Any:
        return model.inverse_transform(SealedLatents.load(sealed_path))

    def plain_encode() -> None:
        np.save(plain_path, model.transform(X), allow_pickle=False)

    def plain_decode() -> Any:
        return model.inverse_transform(np.load(plain_path, allow_pickle=False))

    with CpuPressure() as pressure:
        _, seal_s = timed(seal)
        _, open_s = timed(open_keyed)
        _, public_s = timed(open_public)
        _, plain_encode_s = timed(plain_encode)
        _, plain_decode_s = timed(plain_decode)
    n = len(X)
    opened = SealedLatents.load(sealed_path)
    latents = np.hstack([opened.public, opened.private(keys)])
    return {
        "seal_rows_per_s": n / seal_s,
        "open_rows_per_s": n / open_s,
        "open_public_only_rows_per_s": n / public_s,
        "plain_encode_rows_per_s": n / plain_encode_s,
        "plain_decode_rows_per_s": n / plain_decode_s,
        "bytes_per_row": sealed_path.stat().st_size / n,
        "max_abs_error": float(np.max(np.abs(latents - model.transform(X)))),
        "cpu_pressure": pressure.value,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows sealed and opened")
    parser.add_argument("--train-rows", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wait", type=float, default=30.0, help="max seconds to wait for idle")
    parser.add_argument("--quick", action="store_true", help="smoke mode (numbers don't count)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.train_rows, args.epochs, args.repeats, args.wait = 2_000, 1_000, 1, 1, 0.0

    train = make_census(n=args.train_rows, seed=args.seed)
    X = make_census(n=args.rows, seed=args.seed + 1)
    spec = {"preset": "fds", "sensitive": ("sex",), "epochs": args.epochs, "seed": args.seed}
    model = FDS(**spec, verbose=False).fit(train)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fds-seal-bench-") as tmp:
        folder = Path(tmp)
        params = HEParams()
        save_keys(create_context(params), folder / "keys", params)
        one_repeat(model, X[:100], folder / "keys", folder)  # warm-up: imports, first calls
        for _ in range(args.repeats):
            if args.wait > 0:
                wait_for_idle(timeout=args.wait)
            rows.append(one_repeat(model, X, folder / "keys", folder))

    med = {key: median([r[key] for r in rows]) for key in rows[0] if key != "cpu_pressure"}
    med["max_abs_error"] = max(r["max_abs_error"] for r in rows)
    print_table(
        ["step", "rows/s", "goal"],
        [
            ["seal: encode + encrypt + write", med["seal_rows_per_s"], GOAL_RATE],
            ["open: read + decrypt + decode", med["open_rows_per_s"], GOAL_RATE],
            ["open without keys (public only)", med["open_public_only_rows_per_s"], float("nan")],
            ["plain: encode + np.save", med["plain_encode_rows_per_s"], float("nan")],
            ["plain: np.load + decode", med["plain_decode_rows_per_s"], float("nan")],
        ],
    )
    print(
        f"\n{args.rows:,} census rows, latent_dim {model.config_.latent_dim} "
        f"({model.model_.public_dim} public + {model.model_.private_dim} private); "
        f"{med['bytes_per_row']:.1f} bytes/row in the .fdsz file; max |latent error| "
        f"{med['max_abs_error']:.2g} (goal ≤ {GOAL_ERROR:g}); CPU pressure per repeat "
        + ", ".join("-" if r["cpu_pressure"] is None else f"{r['cpu_pressure']:.1%}" for r in rows)
    )
    meets = (
        med["seal_rows_per_s"] >= GOAL_RATE
        and med["open_rows_per_s"] >= GOAL_RATE
        and med["max_abs_error"] <= GOAL_ERROR
    )
    emit_json(
        {
            "benchmark": "seal",
            "quick": args.quick,
            "rows": args.rows,
            "repeats": args.repeats,
            "latent_dim": model.config_.latent_dim,
            "private_dim": model.model_.private_dim,
            "poly_modulus_degree": params.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
            **{k: v if "error" in k else round(v, 2) for k, v in med.items()},
            "cpu_pressure": [r["cpu_pressure"] for r in rows],
            "environment": environment(),
            "meets_goals": bool(meets),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
