"""`fashion-mm`: Fashion-MNIST images, each with a generated caption naming its class in varied
words ("a plain tee", "photo of a sneaker", "ankle boot, grey"): two modalities sharing the class,
the caption's wording its own nuisance. Read from the local IDX files, like `fashion-mnist`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fds.data.datasets.fashion_mnist import load_fashion_mnist
from fds.data.datasets.splits import Loaded

__all__ = ["FASHION_WORDS", "load_fashion_mm"]

FASHION_WORDS = (
    ("t-shirt", "tee", "top"),
    ("trouser", "pair of trousers", "pair of pants"),
    ("pullover", "sweater", "jumper"),
    ("dress", "frock"),
    ("coat", "jacket"),
    ("sandal", "open shoe"),
    ("shirt", "button-up shirt"),
    ("sneaker", "trainer", "running shoe"),
    ("bag", "handbag", "purse"),
    ("ankle boot", "boot"),
)
_TEMPLATES = ("a {adj} {item}", "photo of a {item}", "{item}, {adj}", "one {adj} {item}")
_ADJECTIVES = ("plain", "grey", "simple", "small", "dark", "light")


def load_fashion_mm(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """The first `n` Fashion-MNIST images of a split with one caption each, labelled by class."""
    images, labels, _ = load_fashion_mnist(n, seed, split, root)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 16])
    captions = []
    for label in labels:
        words = FASHION_WORDS[int(label)]
        template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        item = words[rng.integers(len(words))]
        captions.append(template.format(item=item, adj=_ADJECTIVES[rng.integers(len(_ADJECTIVES))]))
    return {"image": images, "text": captions}, labels, None
