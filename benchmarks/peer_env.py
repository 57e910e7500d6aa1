"""Virtual environments for the peers a benchmark runs side by side (SDV, pythae).

Peers are never FDS dependencies: each lives in its own venv under benchmarks/.envs/<name>, built
once with the CPU torch FDS uses (installed first, so no peer can pull a CUDA build) and reused.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ENVS = Path(__file__).resolve().parent / ".envs"
TORCH = "torch==2.13.0"


def ensure_env(name: str, requirements: list[str], *, with_torch: bool = True) -> Path:
    """Return the python of venv `name`, creating it with `requirements` if it is missing."""
    root = ENVS / name
    python = root / "bin" / "python"
    stamp = root / "requirements.txt"
    wanted = "\n".join(([TORCH] if with_torch else []) + requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if with_torch:
        subprocess.run([*pip, TORCH], check=True)
        # The constraint keeps every later install on the same torch.
        constraint = root / "constraints.txt"
        constraint.write_text(TORCH + "\n")
        pip += ["-c", str(constraint)]
    subprocess.run([*pip, *requirements], check=True)
    stamp.write_text(wanted)
    return python


def run_in_env(python: Path, script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `script` with the peer's python; output is captured and returned for the caller to parse."""
    return subprocess.run(
        [str(python), str(script), *args], check=True, capture_output=True, text=True
    )


if __name__ == "__main__":  # `python benchmarks/peer_env.py NAME REQ...` builds one env by hand
    print(ensure_env(sys.argv[1], sys.argv[2:]))
