"""Text as token ids: a word-level vocabulary fitted on the training text (no download, no model
file beyond the word list, stored as JSON).

Tokens are lower-cased runs of letters/digits (hyphens kept inside words) and single punctuation
marks; a record is `<bos>`-less ids ending in `<eos>`, padded with `<pad>` to a fixed length."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from fds.errors import DataError

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "TextCodec", "tokenize"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|[^\sa-z0-9]")
_MAX_VOCAB = 5000
_MAX_LENGTH = 64


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class TextCodec:
    """Fit on training text once; encode strings to (N, length) int64 ids and decode them back."""

    input_kind = "text"

    def __init__(self, words: list[str], length: int) -> None:
        self.words = words  # id → word; the first four are SPECIALS
        self.length = length  # tokens per record, `<eos>` included
        self.index = {w: i for i, w in enumerate(words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @classmethod
    def fit(cls, texts: Sequence[str], max_vocab: int = _MAX_VOCAB) -> TextCodec:
        """The `max_vocab` most frequent words (ties by first sight), length = longest + `<eos>`."""
        tokens = [tokenize(_check_text(t, i)) for i, t in enumerate(texts)]
        if not tokens:
            raise DataError("text: no records to fit the vocabulary on")
        counts = Counter(w for ts in tokens for w in ts)
        words = [w for w, _ in counts.most_common(max_vocab - len(SPECIALS))]
        length = min(_MAX_LENGTH, max(len(ts) for ts in tokens) + 1)
        return cls(list(SPECIALS) + words, length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Ids per record; unknown words become `<unk>`, longer records are cut (keeping `<eos>`)."""
        out = np.full((len(texts), self.length), PAD, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.index.get(w, UNK) for w in tokenize(_check_text(text, row))]
            ids = [*ids[: self.length - 1], EOS]
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids: np.ndarray) -> list[str]:
        """Words up to the first `<eos>`, joined by spaces (, . ; : ! ? attached to the word before)."""
        texts = []
        for row in np.asarray(ids):
            words = []
            for i in row:
                if i in (EOS, PAD):
                    break
                if i >= len(SPECIALS) or i == UNK:
                    words.append(self.words[int(i)])
            texts.append(re.sub(r" ([,.;:!?])", r"\1", " ".join(words)))
        return texts

    def to_json(self) -> dict[str, Any]:
        return {"input_kind": self.input_kind, "words": self.words, "length": self.length}

    @classmethod
    def from_json(cls, state: dict[str, Any], source: str = "codec.json") -> TextCodec:
        words, length = state.get("words"), state.get("length")
        if (
            not isinstance(words, list)
            or not all(isinstance(w, str) for w in words)
            or tuple(words[: len(SPECIALS)]) != SPECIALS
            or len(set(words)) != len(words)
            or type(length) is not int
            or not 1 <= length <= _MAX_LENGTH
        ):
            raise DataError(f"{source} is invalid: the text vocabulary or its length")
        return cls(words, length)


def _check_text(text: Any, row: int) -> str:
    if not isinstance(text, str):
        raise DataError(f"text: record {row} is {type(text).__name__}, expected a string")
    return text
