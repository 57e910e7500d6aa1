"""The one atomic write: outputs keep the user's umask, secrets stay 0600, a failure changes nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from fds.rundir import atomic_directory, atomic_write, write_json, write_text, write_together


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert _mode(write_text(tmp_path / "report.html", "<p>")) == expected
    assert _mode(write_json(tmp_path / "evaluation.json", {"a": 1})) == expected
    assert _mode(atomic_write(tmp_path / "w.bin", lambda tmp: tmp.write_bytes(b"x"))) == expected
    with atomic_directory(tmp_path / "model") as folder:
        (folder / "config.json").write_text("{}")
    assert _mode(tmp_path / "model") == expected | (0o111 & ~mask)  # directories: x too


def test_an_explicit_mode_wins_over_the_umask(tmp_path, umask):
    umask(0)
    secret = atomic_write(tmp_path / "secret.ctx", b"key", mode=0o600)
    assert _mode(secret) == 0o600
    assert secret.read_bytes() == b"key"


def test_a_replaced_file_takes_the_new_mode(tmp_path, umask):
    path = tmp_path / "keys.json"
    path.write_text("old")
    path.chmod(0o600)
    assert _mode(write_text(path, "new")) == 0o644  # the umask of the fixture, 022
    assert path.read_text() == "new"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text(tmp_path / "metrics.jsonl", "old\n")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_unserialisable_json_leaves_nothing_behind(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "attacks.json", {"model": object()})
    assert list(tmp_path.iterdir()) == []


def test_a_failure_in_one_of_several_files_replaces_none(tmp_path):
    first = write_text(tmp_path / "probe.safetensors", "old data")

    def fail(tmp: Path) -> None:
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space"):
        write_together([(first, b"new data", None), (tmp_path / "probe.json", fail, None)])
    assert first.read_text() == "old data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.safetensors"]


def test_overwrite_false_refuses_an_existing_file_and_writes_nothing(tmp_path):
    existing = write_text(tmp_path / "public.ctx", "theirs")
    files = [(tmp_path / "secret.ctx", b"mine", 0o600), (existing, b"mine", None)]
    with pytest.raises(FileExistsError) as info:
        write_together(files, overwrite=False)
    assert info.value.filename == str(existing)
    assert existing.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public.ctx"]


def test_a_failed_directory_build_keeps_the_old_directory(tmp_path):
    model = tmp_path / "model"
    with atomic_directory(model) as folder:
        (folder / "weights").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(model) as folder:
        (folder / "weights").write_text("v2 (half)")
        raise RuntimeError("killed")
    assert (model / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_directory(model) as folder:
        (folder / "weights").write_text("v2")
    assert (model / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_write_json_is_strict_json_of_plain_values(tmp_path):
    obj = {
        "auc": np.float32(0.75),
        "n": np.int64(3),
        "flags": np.array([True, False]),
        "curve": (1.0, float("nan"), np.inf),
        1: "key made a string",
    }
    text = write_json(tmp_path / "e.json", obj).read_text()

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not strict JSON")

    assert json.loads(text, parse_constant=refuse) == {
        "auc": 0.75,
        "n": 3,
        "flags": [True, False],
        "curve": [1.0, None, None],
        "1": "key made a string",
    }
