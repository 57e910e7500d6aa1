#!/usr/bin/env bash
# The whole check CI runs (after scripts/setup.sh): lint, formatting, the docs site, then every
# test lane.
# Pass pytest options through, e.g. `bash scripts/test.sh -m "not slow" -n 2` for the fast lane.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks docs/tutorials
.venv/bin/ruff format --check src tests benchmarks docs/tutorials
# The documentation site: broken links, anchors and API references fail the build.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
# on every core (pytest-xdist: 8.5 min for the whole suite on this 2-core machine);
# a later -n in "$@" wins, e.g. -n 0 for one process
.venv/bin/python -m pytest -q -n auto "$@"
