"""`fds federated app`: the Flower app directory `flwr run` needs for a real deployment.

The app holds no code of its own: its components point at `fds.federated.server_app:app` and
`fds.federated.client_app:app` (FDS is installed at the SuperLink and at every site, so the
SuperNodes run with `--disable-runtime-dependency-installation`); its run config names fed.yaml
and the run directory the ServerApp writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fds.errors import DataError
from fds.federated.settings import load_federated_yaml, model_config
from fds.federated.warm import load_init_model
from fds.rundir import write_text

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fds-federated"
version = "1.0.0"
description = "FDS trained across sites with Flower"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "fds"

[tool.flwr.app.components]
serverapp = "fds.federated.server_app:app"
clientapp = "fds.federated.client_app:app"

[tool.flwr.app.config]
fds-config = {config}
out = {run}
"""


def write_app(
    config: str | Path, out: str | Path, run: str | Path, overwrite: bool = False
) -> dict[str, Any]:
    """Write APP/pyproject.toml (after checking fed.yaml) and return what to run next."""
    config, out, run = Path(config).resolve(), Path(out), Path(run).resolve()
    # a bad fed.yaml, or a warm start that does not fit, fails here, not at the SuperLink
    params, settings = load_federated_yaml(config)
    if settings.init_model is not None:
        load_init_model(settings.init_model, model_config(params))
    target = out / "pyproject.toml"
    if target.exists() and not overwrite:
        raise DataError(f"{target} exists; pass --overwrite to replace it")
    write_text(target, PYPROJECT.format(config=json.dumps(str(config)), run=json.dumps(str(run))))
    return {
        "app_dir": str(out),
        "pyproject": str(target),
        "run_dir": str(run),
        "next": f"flwr run {out} <superlink-connection> --stream",
    }
