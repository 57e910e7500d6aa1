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


def codec_from_json(state: Any, source: str = "codec.json") -> Codec:
    """Rebuild a fitted codec from `codec.json` (plain JSON: no code is executed, every field is
    checked, a malformed one is a DataError naming `source` and the field)."""
    if not isinstance(state, dict):
        raise DataError(f"{source} must hold a JSON object, not {type(state).__name__}")
    kind = state.get("input_kind")
    if not isinstance(kind, str) or kind not in CODECS:
        raise DataError(f"{source} has an unknown input_kind {kind!r}")
    return CODECS[kind].from_json(state, source)
