"""A whole Flower deployment on 127.0.0.1 — one SuperLink, one SuperNode per site file — for the
integration test, the benchmark and a first try before real machines. Every process runs in its
own session (process group) and is stopped, with bounded waits, when the block exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fds.errors import DataError

BIN = Path(sys.executable).parent
CONNECTION = "fds-loopback"
_KILLED_SECONDS = 5.0  # for the members of a killed group to exit
_STOP_SECONDS = 10.0
_SUPERLINK_START_SECONDS = 30.0


@dataclass
class Loopback:
    """The running federation: the environment `flwr run` needs and the processes started."""

    env: dict[str, str]
    workdir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(self, app_dir: str | Path, timeout: float) -> subprocess.CompletedProcess:
        """`flwr run APP fds-loopback --stream`, bounded by `timeout` seconds."""
        return subprocess.run(
            [str(BIN / "flwr"), "run", str(app_dir), CONNECTION, "--stream"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def loopback_federation(sites: dict[str, str], workdir: str | Path) -> Iterator[Loopback]:
    """Start the SuperLink and one SuperNode per (site name → data file); logs go to `workdir`."""
    workdir = Path(workdir)
    home = workdir / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = os.environ | {
        "FLWR_TELEMETRY_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
        "FLWR_HOME": str(home),
        # the SuperLink and SuperNodes start flower-superexec and the app processes by name
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    loopback = Loopback(env, workdir)
    try:
        loopback.processes.append(
            _start(
                [
                    "flower-superlink",
                    "--insecure",
                    "--isolation",
                    "subprocess",
                    "--disable-runtime-dependency-installation",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--database",
                    str(workdir / "superlink.db"),
                ],
                workdir / "superlink.log",
                env,
            )
        )
        _wait_for_port(port, loopback.processes[0], workdir / "superlink.log")
        for i, (name, path) in enumerate(sites.items()):
            loopback.processes.append(
                _start(
                    [
                        "flower-supernode",
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(free_port()),
                        "--node-config",
                        f"data-path='{Path(path).resolve()}' site-name='{name}'",
                    ],
                    workdir / f"supernode-{i}.log",
                    env,
                )
            )
        yield loopback
    finally:
        stop(loopback.processes)


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _SUPERLINK_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DataError(f"flower-superlink exited at start-up; see {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise DataError(f"flower-superlink did not listen within {_SUPERLINK_START_SECONDS:.0f} s")


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process group, then SIGKILL what is left after a bounded wait."""
    for proc in processes:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_SECONDS
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in processes:
        if group_alive(proc.pid):
            _signal_group(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=5)
    # a killed group's other members (a SuperNode's ClientApp processes) exit a moment after the
    # signal: on a loaded machine one was still running when the caller looked
    deadline = time.monotonic() + _KILLED_SECONDS
    while any(group_alive(proc.pid) for proc in processes) and time.monotonic() < deadline:
        time.sleep(0.1)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """A live (non-zombie) process in group `pgid` (zombies wait for a PID 1 that may not reap)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
