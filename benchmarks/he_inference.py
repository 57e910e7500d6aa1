"""Encrypted inference throughput (issue 5): CKKS packed path vs one ciphertext per record.

A 10-class linear head (StandardScaler + LogisticRegression, folded into W and b) on synthetic
16-d latents (Gaussian blobs, one per class). Each repeat runs, end to end and in the same run:

- packed: the owner encrypts feature-major batches (16 ciphertexts per 4,096 records) and
  serializes them; the server loads them under the public context (no secret key) and computes 10
  score ciphertexts with plaintext products and sums only; the owner loads and decrypts them.
- per-record: one ciphertext per record, `enc(z).matmul(W) + b` on the server (rotations, so the
  context carries Galois keys), same serialization both ways.

A polynomial-activation MLP head (16-32-10, ReLU replaced by its least-squares quadratic over the
training pre-activations; CKKS N = 16384, primes [60, 40, 40, 40, 60] for depth 3) runs on the
packed path too (`--mlp-hidden 0` skips it); its accuracy beside the exact ReLU network's is the
cost of the approximation.

Reported: records/s of each path (median over repeats), the paired speedup (median of per-repeat
ratios), bytes on the wire per record (request + reply ciphertexts ÷ records), the public context
size sent once, agreement of encrypted vs plaintext predictions and the max absolute score error.
CKKS parameters: poly modulus 8192, primes [60, 40, 60], scale 2**40 (128-bit security).

    .venv/bin/python benchmarks/he_inference.py [--records 16384] [--per-record 256] [--repeats 5]

`--serve` measures the HTTP service instead (issue 14): it trains a small census model, saves a
logistic probe of it, starts one `fds serve` for that probe on a free 127.0.0.1 port, registers a
public context once (the bearer token is reused), and sends one packed batch (`--serve-records`
records, one ciphertext per latent dimension) per request from `--concurrency` workers (httpx
async), `--requests` requests per level. Reported per level: p50 / p95 / max latency, requests/s
and records/s; also whether every reply decrypts to the same scores (max deviation), whether the
server log holds a traceback, and how long the server took to stop.

    .venv/bin/python benchmarks/he_inference.py --serve [--concurrency 1,8,50] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts
from _common import CpuPressure, emit_json, median, print_table, wait_for_idle
from quickstart import fds_command
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds.privacy.he import (
    EncryptedBatch,
    HEParams,
    LinearHead,
    PolyMLPHead,
    create_context,
    decrypt_batches,
    encrypt_latents,
    load_public_context,
    public_context_bytes,
)

DIM, N_CLASSES = 16, 10
GOAL_RATE, GOAL_SPEEDUP, GOAL_AGREEMENT, GOAL_ERROR = 2000.0, 50.0, 0.999, 1e-3


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=n)
    centers = rng.normal(scale=0.6, size=(N_CLASSES, DIM))  # overlapping classes: ~70% accuracy
    return centers[y] + rng.normal(size=(n, DIM)), y


def packed(secret: ts.Context, public: ts.Context, head: LinearHead, Z: np.ndarray):
    """Owner → server → owner; returns (scores, wire bytes, seconds)."""
    started = time.perf_counter()
    requests = [b.to_bytes() for b in encrypt_latents(secret, Z)]
    replies = [
        head.evaluate(EncryptedBatch.from_bytes(r, public, kind="latents")).to_bytes()
        for r in requests
    ]
    key = secret.secret_key()
    parts = []
    for reply in replies:
        batch = EncryptedBatch.from_bytes(reply, secret, kind="scores")
        parts.append(np.stack([v.decrypt(key) for v in batch.vectors], axis=1))
    seconds = time.perf_counter() - started
    wire = sum(map(len, requests)) + sum(map(len, replies))
    return np.concatenate(parts), wire, seconds


def per_record(secret: ts.Context, public: ts.Context, head: LinearHead, Z: np.ndarray):
    started = time.perf_counter()
    requests = [ts.ckks_vector(secret, row).serialize() for row in Z]
    W, b = head.W.tolist(), head.b.tolist()
    replies = [ts.ckks_vector_from(public, r).matmul(W).add_(b).serialize() for r in requests]
    key = secret.secret_key()
    scores = np.asarray([ts.ckks_vector_from(secret, r).decrypt(key) for r in replies])
    seconds = time.perf_counter() - started
    wire = sum(map(len, requests)) + sum(map(len, replies))
    return scores, wire, seconds


# --------------------------------------------------------------------------- --serve
PROBE = "bench"
OCTET = "application/octet-stream"


def _fds(*args: str, cwd: Path) -> None:
    proc = subprocess.run([*fds_command(), *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"`fds {' '.join(args)}` exited {proc.returncode}: {proc.stderr[-2000:]}")


def saved_probe(workdir: Path, epochs: int) -> Path:
    """A small census model (16-d latents) with a logistic probe saved as PROBE; its run dir."""
    config = workdir / "model.yaml"
    config.write_text(f"latent_dim: {DIM}\nhidden_dims: [64]\nepochs: {epochs}\nseed: 0\n")
    run = workdir / "run"
    _fds("train", "--data", "census", "--config", str(config), "--out", str(run), "-q", cwd=workdir)
    probe = ["probe", "run", "--model", str(run), "--data", "census", "--target", "high_income"]
    _fds(*probe, "--heads", "logistic", "--save", PROBE, "--json", cwd=workdir)
    return run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_server(run: Path, log: Path, stopped: dict[str, float]) -> Iterator[str]:
    """`fds serve` for PROBE on a free 127.0.0.1 port, its output in `log`; yields its URL and
    stops it on exit (SIGTERM, then SIGKILL after 10 s), recording the seconds in `stopped`."""
    import httpx

    port = _free_port()
    cmd = [*fds_command(), "serve", "--model", str(run), "--probe", PROBE]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/head", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fds serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        started = time.perf_counter()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        stopped["seconds"] = time.perf_counter() - started


async def _level(
    client: Any, headers: dict[str, str], payload: bytes, concurrency: int, n: int
) -> tuple[list[float], list[bytes], float]:
    """`n` requests from `concurrency` workers; latencies (s), replies and the wall time."""
    remaining, latencies, replies = list(range(n)), [], []

    async def worker() -> None:
        while remaining:
            remaining.pop()
            started = time.perf_counter()
            reply = await client.post("/v1/infer", content=payload, headers=headers)
            latencies.append(time.perf_counter() - started)
            if reply.status_code != 200:
                raise SystemExit(f"the server refused a batch ({reply.status_code}): {reply.text}")
            replies.append(reply.content)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, replies, time.perf_counter() - started


async def measure_levels(
    url: str, public_blob: bytes, payload: bytes, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Register once, warm up, then each concurrency level in turn; the replies of all levels."""
    import httpx

    limits = httpx.Limits(max_connections=max(args.concurrency))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        octet = {"content-type": OCTET}
        reply = await client.post("/v1/contexts", content=public_blob, headers=octet)
        if reply.status_code != 201:
            raise SystemExit(f"registration refused ({reply.status_code}): {reply.text}")
        headers = {**octet, "authorization": f"Bearer {reply.json()['token']}"}
        await _level(client, headers, payload, 1, 2)  # warm-up
        rows, replies = [], []
        for concurrency in args.concurrency:
            if args.wait > 0:
                wait_for_idle(timeout=args.wait)
            n = max(args.requests, concurrency)
            with CpuPressure() as pressure:
                latencies, level_replies, wall = await _level(
                    client, headers, payload, concurrency, n
                )
            replies += level_replies
            ms = np.asarray(latencies) * 1e3
            rows.append(
                {
                    "concurrency": concurrency,
                    "requests": n,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p95_ms": float(np.percentile(ms, 95)),
                    "max_ms": float(ms.max()),
                    "requests_per_s": n / wall,
                    "records_per_s": n * args.serve_records / wall,
                    "cpu_pressure": pressure.value,
                }
            )
        await client.delete("/v1/contexts", headers=headers)
    return rows, replies


def serve_main(args: argparse.Namespace) -> None:
    secret = create_context(HEParams())
    public_blob = public_context_bytes(secret)
    Z = np.random.default_rng(args.seed).normal(size=(args.serve_records, DIM))
    (batch,) = encrypt_latents(secret, Z)
    payload = batch.to_bytes()
    stopped: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fds-he-serve-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        run = saved_probe(workdir, epochs=1 if args.quick else 3)
        setup_s = time.perf_counter() - started
        log = workdir / "serve.log"
        with local_server(run, log, stopped) as url:
            rows, replies = asyncio.run(measure_levels(url, public_blob, payload, args))
        log_text = log.read_text(errors="replace")
    scores = np.stack(
        [
            decrypt_batches(secret, EncryptedBatch.from_bytes(r, secret, kind="scores"))
            for r in replies
        ]
    )
    deviation = float(np.max(np.abs(scores - np.median(scores, axis=0))))
    columns = ["concurrency", "requests", "p50_ms", "p95_ms", "max_ms"]
    columns += ["requests_per_s", "records_per_s"]
    print_table(
        [c.replace("_per_", "/").replace("_ms", " ms") for c in columns],
        [[r[c] for c in columns] for r in rows],
    )
    tracebacks = log_text.count("Traceback")
    pressures = ("-" if r["cpu_pressure"] is None else f"{r['cpu_pressure']:.0%}" for r in rows)
    print(
        f"\none `fds serve` (logistic probe, {DIM}-d latents, CKKS N=8192) on 127.0.0.1; "
        f"{args.serve_records:,} records per request ({len(payload):,} bytes up, "
        f"{len(replies[0]):,} down); replies agree within {deviation:.1e}; server log "
        f"tracebacks: {tracebacks}; stopped in {stopped['seconds']:.2f} s; CPU pressure per "
        f"level {', '.join(pressures)}"
    )
    emit_json(
        {
            "benchmark": "he_inference_serve",
            "quick": args.quick,
            "latent_dim": DIM,
            "poly_modulus_degree": 8192,
            "records_per_request": args.serve_records,
            "request_bytes": len(payload),
            "reply_bytes": len(replies[0]),
            "public_context_bytes": len(public_blob),
            "levels": {
                str(r["concurrency"]): {
                    k: v if v is None or k == "requests" else round(v, 3)
                    for k, v in r.items()
                    if k != "concurrency"
                }
                for r in rows
            },
            "max_reply_deviation": deviation,
            "server_log_tracebacks": tracebacks,
            "server_stop_seconds": round(stopped["seconds"], 3),
            "setup_seconds": round(setup_s, 1),
            "cpus": os.cpu_count(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=16384, help="records on the packed path")
    parser.add_argument("--per-record", type=int, default=256, help="records on the slow path")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mlp-hidden", type=int, default=32, help="hidden units of the polynomial MLP (0: skip)"
    )
    parser.add_argument("--wait", type=float, default=30.0, help="max seconds to wait for idle")
    parser.add_argument("--quick", action="store_true", help="smoke mode (numbers don't count)")
    parser.add_argument("--serve", action="store_true", help="latency of one local `fds serve`")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 8, 50],
        help="--serve: comma-separated numbers of concurrent clients",
    )
    parser.add_argument("--requests", type=int, default=100, help="--serve: requests per level")
    parser.add_argument(
        "--serve-records", type=int, default=4096, help="--serve: records per request (≤ 4096)"
    )
    args = parser.parse_args()
    if args.serve:
        if args.quick:
            args.requests, args.wait = 8, 0.0
        return serve_main(args)
    if args.quick:
        args.records, args.per_record, args.repeats, args.wait = 4096, 16, 1, 0.0

    Z_all, y_all = synthetic(4000 + args.records, args.seed)  # same classes, disjoint rows
    Z_train, y_train, Z, y = Z_all[:4000], y_all[:4000], Z_all[4000:], y_all[4000:]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Z_train, y_train)
    head = LinearHead.from_sklearn(pipe)
    plain_scores = head.scores(Z)
    plain_pred = head.predict_from_scores(plain_scores)

    started = time.perf_counter()
    secret = create_context(HEParams())
    keygen_s = time.perf_counter() - started
    public_blob = public_context_bytes(secret)
    public = load_public_context(public_blob)
    rot_secret = create_context(HEParams(galois_keys=True))
    rot_blob = public_context_bytes(rot_secret)
    rot_public = load_public_context(rot_blob)
    assert not public.has_secret_key() and not rot_public.has_secret_key()
    mlp_report: dict[str, Any] | None = None
    if args.mlp_hidden > 0:
        mlp = make_pipeline(
            StandardScaler(),
            MLPClassifier(hidden_layer_sizes=(args.mlp_hidden,), max_iter=1000, random_state=0),
        ).fit(Z_train, y_train)
        mlp_head = PolyMLPHead.from_sklearn_mlp(mlp, Z_train)
        mlp_report = mlp_head.approximation_report(mlp, Z, y)
        deep_params = HEParams.for_depth(mlp_head.depth)
        deep_secret = create_context(deep_params)
        deep_blob = public_context_bytes(deep_secret, relin_keys=True)
        deep_public = load_public_context(deep_blob)
        Z_mlp = Z[: 2 * deep_params.slot_count]
        mlp_plain = mlp_head.scores(Z_mlp)

    rows: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        if args.wait > 0:
            wait_for_idle(timeout=args.wait)
        with CpuPressure() as pressure:
            scores, wire, seconds = packed(secret, public, head, Z)
            slow_scores, slow_wire, slow_seconds = per_record(
                rot_secret, rot_public, head, Z[: args.per_record]
            )
        rate, slow_rate = len(Z) / seconds, args.per_record / slow_seconds
        mlp_row: dict[str, Any] = {}
        if mlp_report is not None:
            mlp_scores, mlp_wire, mlp_seconds = packed(deep_secret, deep_public, mlp_head, Z_mlp)
            mlp_row = {
                "mlp_records_per_s": len(Z_mlp) / mlp_seconds,
                "mlp_bytes_per_record": mlp_wire / len(Z_mlp),
                "mlp_max_abs_error": float(np.max(np.abs(mlp_scores - mlp_plain))),
                "mlp_agreement": float(
                    np.mean(
                        mlp_head.predict_from_scores(mlp_scores)
                        == mlp_head.predict_from_scores(mlp_plain)
                    )
                ),
            }
        rows.append(
            {
                **mlp_row,
                "packed_records_per_s": rate,
                "per_record_records_per_s": slow_rate,
                "speedup": rate / slow_rate,
                "agreement": float(np.mean(head.predict_from_scores(scores) == plain_pred)),
                "max_abs_error": float(np.max(np.abs(scores - plain_scores))),
                "per_record_max_abs_error": float(
                    np.max(np.abs(slow_scores - plain_scores[: args.per_record]))
                ),
                "packed_bytes_per_record": wire / len(Z),
                "per_record_bytes_per_record": slow_wire / args.per_record,
                "cpu_pressure": pressure.value,
            }
        )

    med = {key: median([r[key] for r in rows]) for key in rows[0] if key != "cpu_pressure"}
    mlp_med = {k: med.pop(k) for k in list(med) if k.startswith("mlp_")}
    med["max_abs_error"] = max(r["max_abs_error"] for r in rows)
    med["agreement"] = min(r["agreement"] for r in rows)
    print_table(
        ["path", "records", "records/s", "bytes/record", "max |score err|"],
        [
            [
                "packed (feature-major)",
                len(Z),
                med["packed_records_per_s"],
                med["packed_bytes_per_record"],
                med["max_abs_error"],
            ],
            [
                "one ciphertext per record",
                args.per_record,
                med["per_record_records_per_s"],
                med["per_record_bytes_per_record"],
                med["per_record_max_abs_error"],
            ],
        ],
    )
    if mlp_report is not None:
        mlp_med["mlp_max_abs_error"] = max(r["mlp_max_abs_error"] for r in rows)
        mlp_med["mlp_agreement"] = min(r["mlp_agreement"] for r in rows)
        mlp_report.update(mlp_med)
        print(
            f"\npolynomial MLP ({DIM}-{args.mlp_hidden}-{N_CLASSES}, activation x² fitted to "
            f"ReLU, CKKS N={deep_params.poly_modulus_degree}, primes "
            f"{list(deep_params.coeff_mod_bit_sizes)}), {len(Z_mlp)} records: "
            f"{mlp_med['mlp_records_per_s']:,.0f} records/s, {mlp_med['mlp_bytes_per_record']:,.0f} "
            f"bytes/record, max |score err| {mlp_med['mlp_max_abs_error']:.2g}, agreement "
            f"{mlp_med['mlp_agreement']:.4%}; accuracy ReLU {mlp_report['exact_accuracy']:.4f} vs "
            f"polynomial {mlp_report['poly_accuracy']:.4f} (loss "
            f"{mlp_report['accuracy_loss']:+.4f}); public context {len(deep_blob):,} bytes"
        )
    print(
        f"\nspeedup {med['speedup']:,.0f}× (goal ≥ {GOAL_SPEEDUP:.0f}×); agreement "
        f"{med['agreement']:.4%} (goal ≥ 99.9%); public context {len(public_blob):,} bytes "
        f"({len(rot_blob):,} with the Galois keys the per-record path needs); key generation "
        f"{keygen_s:.2f} s; CPU pressure per repeat "
        + ", ".join("-" if r["cpu_pressure"] is None else f"{r['cpu_pressure']:.1%}" for r in rows)
    )
    meets = (
        med["packed_records_per_s"] >= GOAL_RATE
        and med["speedup"] >= GOAL_SPEEDUP
        and med["agreement"] >= GOAL_AGREEMENT
        and med["max_abs_error"] <= GOAL_ERROR
    )
    emit_json(
        {
            "benchmark": "he_inference",
            "quick": args.quick,
            "latent_dim": DIM,
            "n_classes": N_CLASSES,
            "poly_modulus_degree": 8192,
            "coeff_mod_bit_sizes": [60, 40, 60],
            "records": len(Z),
            "per_record_records": args.per_record,
            "repeats": args.repeats,
            **{k: v if "error" in k else round(v, 4) for k, v in med.items()},
            "public_context_bytes": len(public_blob),
            "public_context_galois_bytes": len(rot_blob),
            "keygen_seconds": round(keygen_s, 4),
            "cpu_pressure": [r["cpu_pressure"] for r in rows],
            "mlp": None
            if mlp_report is None
            else {
                "hidden": args.mlp_hidden,
                "poly_modulus_degree": deep_params.poly_modulus_degree,
                "coeff_mod_bit_sizes": list(deep_params.coeff_mod_bit_sizes),
                "records": len(Z_mlp),
                "public_context_bytes": len(deep_blob),
                **{k: mlp_report[k] for k in ("exact_accuracy", "poly_accuracy", "accuracy_loss")},
                "prediction_agreement_with_relu": mlp_report["prediction_agreement"],
                **{k[4:]: v for k, v in mlp_med.items()},
            },
            "meets_goals": bool(meets),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
