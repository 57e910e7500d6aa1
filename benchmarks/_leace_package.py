"""Run inside the benchmark venv that holds the `concept-erasure` package (peer_env "leace"):
read codes and labels from an .npz, erase with the package's LeaceEraser (no covariance
shrinkage: the exact closed form), and write the erased codes back. The front benchmark compares
them with fds.privacy.erasure's closed form on the same codes."""

import sys

import numpy as np
import torch
from concept_erasure import LeaceEraser

if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    data = np.load(source)
    x = torch.as_tensor(data["x"], dtype=torch.float64)
    _, index = np.unique(data["s"], return_inverse=True)
    z = torch.nn.functional.one_hot(torch.as_tensor(index)).double()
    eraser = LeaceEraser.fit(x, z, shrinkage=False)
    np.savez(target, erased=eraser(x).numpy())
