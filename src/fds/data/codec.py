"""What every codec shares: the layout of the encoded vector, and dispatch from raw input to a codec.

A codec turns user data (a table or images) into a float32 matrix whose columns are grouped in
blocks, and back. The blocks tell the model which likelihood fits which columns: real-valued
columns first (one contiguous block), then binary columns, then one block per categorical column.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from fds.errors import DataError

BlockKind = Literal["real", "binary", "categorical"]


@dataclass(frozen=True)
class Block:
    """A contiguous slice [start, stop) of the encoded vector modelled by one likelihood."""

    kind: BlockKind
    start: int
    stop: int
    name: str

    @property
    def width(self) -> int:
        return self.stop - self.start


class Codec(Protocol):
    """The interface the estimator relies on; `TabularCodec` and `ImageCodec` implement it."""

    blocks: list[Block]
    n_encoded: int
    input_kind: str

    def encode(self, data: Any) -> np.ndarray: ...

    def decode(self, encoded: np.ndarray) -> Any: ...

    def to_json(self) -> dict[str, Any]: ...


def blocks_to_json(blocks: list[Block]) -> list[dict[str, Any]]:
    return [asdict(b) for b in blocks]


def blocks_from_json(items: Any, source: str = "codec.json") -> list[Block]:
    try:
        return [Block(**item) for item in items]
    except TypeError:
        raise DataError(f"{source} is invalid: blocks must be a list of blocks") from None


def input_kind_of(data: Any) -> str:
    """'table' for DataFrames and 2-D arrays (rows × features), 'images' for 3-D/4-D arrays."""
    if isinstance(data, pd.DataFrame):
        return "table"
    if isinstance(data, np.ndarray):
        if data.ndim == 2:
            return "table"
        if data.ndim in (3, 4):
            return "images"
        raise DataError(
            f"expected a 2-D array (rows × features) or images (N,H,W[,C]), got shape {data.shape}; "
            "Reshape your data with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one row"
        )
    raise DataError(
        f"expected a pandas DataFrame or a numpy array, got {type(data).__name__}; "
        "convert lists with np.asarray first"
    )
