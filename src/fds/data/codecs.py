"""The codec of each input kind, and a fitted codec rebuilt from `codec.json`.

It sits above `codec` (the layout every codec shares) and the codecs themselves, which import
that layout: the dispatch lives here so that no module imports a module that imports it back.
"""

from __future__ import annotations

from typing import Any

from fds.data.codec import Codec
from fds.data.image_codec import ImageCodec
from fds.data.tabular import TabularCodec
from fds.errors import DataError

CODECS: dict[str, type] = {"table": TabularCodec, "images": ImageCodec}  # by `input_kind`


def codec_from_json(state: dict[str, Any]) -> Codec:
    """Rebuild a fitted codec from `codec.json` (plain JSON: no code is executed)."""
    kind = state.get("input_kind")
    if kind not in CODECS:
        raise DataError(f"codec.json has an unknown input_kind {kind!r}")
    return CODECS[kind].from_json(state)
