"""TensorBoard backend: one event-file folder per run under `--log tensorboard=DIR`
(`tensorboard/EXPERIMENT/RUN` by default; `tensorboard --logdir tensorboard` shows them).

TensorBoard has no artifact store: the run's PNGs are logged as images, and the paths of its
other files (model directory, report) as text, so a run can be found from its curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fds.tracking.base import flat_params, numeric

__all__ = ["TensorBoardTracker"]


class TensorBoardTracker:
    """Writes through torch.utils.tensorboard's SummaryWriter (the tensorboard package)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.writer: Any = None
        self.last_step = 0

    def start_run(self, name: str, params: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.root / name))
        self.last_step = 0
        rows = "\n".join(f"| {k} | {v} |" for k, v in flat_params(params).items())
        self.writer.add_text("params", "| parameter | value |\n|---|---|\n" + rows, 0)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Per-epoch numbers at their epoch; final figures (step None) under `final/` at the
        last epoch logged."""
        writer = self._writer()
        prefix = "" if step is not None else "final/"
        self.last_step = step if step is not None else self.last_step
        for key, value in numeric(metrics).items():
            writer.add_scalar(prefix + key, value, self.last_step)

    def log_artifacts(self, paths: Sequence[Path]) -> None:
        from PIL import Image

        writer = self._writer()
        for path in paths:
            if path.suffix.lower() == ".png":
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                writer.add_image(path.stem, pixels, self.last_step, dataformats="HWC")
        listing = "\n".join(f"- {path.resolve()}" for path in paths)
        writer.add_text("artifacts", listing, self.last_step)

    def end_run(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.add_text("status", status, self.last_step)
            self.writer.close()
            self.writer = None

    def _writer(self) -> Any:
        if self.writer is None:
            raise RuntimeError("TensorBoardTracker: log_* called outside start_run/end_run")
        return self.writer
