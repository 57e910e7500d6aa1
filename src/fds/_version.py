"""The version of FDS: one place, read by the package, the model manifests and the build
(pyproject.toml), and importable from any layer without importing the package's API."""

__version__ = "0.1.0"
