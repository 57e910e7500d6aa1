"""The multimodal codec: one codec per modality, absent records flagged, JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fds.data.datasets.shapes_mm import SAMPLE_RATE, make_shapes_mm
from fds.data.multimodal import AudioCodec, MultimodalCodec, TextCodec, griffin_lim
from fds.data.multimodal.codec import subsets
from fds.errors import DataError


@pytest.fixture(scope="module")
def records() -> dict:
    X, _ = make_shapes_mm(60, seed=0)
    return X


def test_text_round_trip_and_unknown_words() -> None:
    codec = TextCodec.fit(["a small box, upper-left", "a big oval"])
    ids = codec.encode(["a big box", "a purple box"])
    assert ids.shape == (2, codec.length) and ids.dtype == np.int64
    assert codec.decode(ids) == ["a big box", "a <unk> box"]
    assert codec.decode(codec.encode(["a small box, upper-left"])) == ["a small box, upper-left"]
    again = TextCodec.from_json(json.loads(json.dumps(codec.to_json())))
    np.testing.assert_array_equal(again.encode(["a big oval"]), codec.encode(["a big oval"]))
    with pytest.raises(DataError, match="record 1 is int"):
        codec.encode(["ok", 3])


def test_griffin_lim_recovers_a_waveform_with_the_same_spectrum(records: dict) -> None:
    codec = AudioCodec.fit(records["audio"], SAMPLE_RATE)
    features = codec.encode(records["audio"][:8])
    waves = codec.decode(features)
    assert waves.shape == (8, records["audio"].shape[1])
    again = codec.magnitudes(codec.encode(waves))
    target = codec.magnitudes(features)
    assert np.linalg.norm(again - target) / np.linalg.norm(target) < 0.3
    # random phases alone are far worse: Griffin-Lim's iterations do the work
    import torch

    mags = torch.from_numpy(target)
    once = griffin_lim(mags, codec.n_fft, codec.hop, codec.length, n_iter=0).numpy()
    rough = codec.magnitudes(codec.encode(once))
    assert np.linalg.norm(rough - target) > 1.5 * np.linalg.norm(again - target)


def test_missing_records_are_flagged_not_encoded(records: dict) -> None:
    X = dict(records)
    X["text"] = list(X["text"])
    X["text"][2] = None
    X["text"][4] = float("nan")
    X["table"] = X["table"].copy()
    X["table"].iloc[7] = np.nan
    audio = list(X["audio"])
    audio[1] = None
    X["audio"] = audio
    codec = MultimodalCodec.fit(X, sample_rate=SAMPLE_RATE)
    encoded, present = codec.encode(X)
    assert present["text"].sum() == 58 and not present["text"][[2, 4]].any()
    assert not present["table"][7] and not present["audio"][1] and present["image"].all()
    assert (encoded["audio"][1] == 0).all()
    # a modality left out of the dict is absent everywhere
    _, only = codec.encode({"image": X["image"][:5]})
    assert only["image"].all() and not only["text"].any()
    again = MultimodalCodec.from_json(json.loads(json.dumps(codec.to_json())))
    np.testing.assert_array_equal(again.encode(X)[0]["text"], encoded["text"])


def test_a_text_column_is_read_by_position_whatever_its_index(records: dict) -> None:
    import pandas as pd

    captions = pd.Series(records["text"][:4], index=[10, 11, 12, 13])
    codec = MultimodalCodec.fit({"text": captions})
    encoded, present = codec.encode({"text": captions})
    assert present["text"].all()
    assert codec.decode("text", encoded["text"]) == [c.lower() for c in records["text"][:4]]


def test_misaligned_or_unknown_modalities_fail(records: dict) -> None:
    with pytest.raises(DataError, match="aligned rows, got lengths image=60, text=3"):
        MultimodalCodec.fit({"image": records["image"], "text": ["a", "b", "c"]})
    with pytest.raises(DataError, match="unknown modality 'video'"):
        MultimodalCodec.fit({"video": records["image"]})
    codec = MultimodalCodec.fit({"text": records["text"]})
    with pytest.raises(DataError, match="unknown modality 'image': the model knows text"):
        codec.encode({"image": records["image"]})


def test_subsets_are_every_nonempty_combination() -> None:
    found = subsets(["a", "b", "c"])
    assert len(found) == 7 and found[0] == ("a",) and found[-1] == ("a", "b", "c")
