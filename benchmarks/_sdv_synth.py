"""Fit one SDV 2.x synthesizer on a CSV and write its samples (run by benchmarks/synthesis.py with
the python of benchmarks/.envs/sdv; SDV is never imported by FDS).

    python _sdv_synth.py SYNTH TRAIN_CSV OUT_CSV EPOCHS SEED

Prints one JSON line: fit and sampling CPU seconds (this process, one thread; torch.optim's
one-time import of torch._dynamo is done before the clock starts, as in synthesis.py).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
import torch._dynamo
from sdv.metadata import Metadata
from sdv.single_table import (
    CTGANSynthesizer,
    GaussianCopulaSynthesizer,
    TVAESynthesizer,
)


def main() -> None:
    name, train_csv, out_csv, epochs, seed = sys.argv[1:6]
    torch.set_num_threads(1)
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))
    train = pd.read_csv(train_csv)
    metadata = Metadata.detect_from_dataframes({"table": train})
    if name == "gaussian_copula":
        synth = GaussianCopulaSynthesizer(metadata)
    elif name == "tvae":
        synth = TVAESynthesizer(metadata, epochs=int(epochs), enable_gpu=False)
    elif name == "ctgan":
        synth = CTGANSynthesizer(metadata, epochs=int(epochs), enable_gpu=False)
    else:
        raise SystemExit(f"unknown SDV synthesizer {name!r}")
    start = time.process_time()
    synth.fit({"table": train})  # SDV 2 takes a dict of one table
    fit_cpu = time.process_time() - start
    start = time.process_time()
    sampled = synth.sample(len(train))
    sampled = sampled["table"] if isinstance(sampled, dict) else sampled
    sampled.to_csv(out_csv, index=False)
    print(
        json.dumps({"fit_cpu_seconds": fit_cpu, "sample_cpu_seconds": time.process_time() - start})
    )


if __name__ == "__main__":
    main()
