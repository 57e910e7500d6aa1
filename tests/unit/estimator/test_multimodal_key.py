"""A fusion model with a key (`FDS(fusion=..., preset="fds")` with sensitive attributes): the
experts never read the sensitive values, the key is encoded from them alone, decoding with
another record's key changes the decoded sensitive column, and the model directory keeps it; for
each of the four fusion models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.errors import ConfigError, DataError
from fds.models.fusion import FUSIONS

KEYED = {"preset": "fds", "hidden_dims": (32,), "latent_dim": 4, "verbose": False, "seed": 0}


def _records(n: int, audio: bool = False) -> tuple[dict, pd.DataFrame]:
    X, factors = make_shapes_mm(n, seed=0)
    table = X["table"].copy()
    table["group"] = np.where(factors["shape"].to_numpy() == 0, "a", "b")
    sounds = {"audio": X["audio"]} if audio else {}
    return {"text": list(X["text"]), **sounds, "table": table}, factors


@pytest.fixture(scope="module")
def records() -> dict:
    return _records(80)[0]


@pytest.fixture(scope="module", params=sorted(FUSIONS))
def keyed(request: pytest.FixtureRequest, records: dict) -> FDS:
    """`group` (a table column) as the key: left out of the table expert's input; each fusion
    model in turn."""
    model = FDS(
        fusion=request.param, sensitive=("group",), epochs=100, batch_size=40, lr=3e-3, **KEYED
    )
    return model.fit(records)


def _flipped(records: dict) -> dict:
    table = records["table"].copy()
    table["group"] = np.where(table["group"] == "a", "b", "a")
    return {"text": records["text"], "table": table}


def test_public_code_never_reads_the_sensitive_column(keyed: FDS, records: dict) -> None:
    flipped = _flipped(records)
    for given in (["table"], None):
        public = keyed.transform(records, modalities=given, part="public")
        assert public.shape == (80, 2)
        np.testing.assert_array_equal(
            public, keyed.transform(flipped, modalities=given, part="public")
        )
    key, other = (keyed.transform(r, part="private") for r in (records, flipped))
    assert key.shape == (80, 2) and not np.allclose(key, other)  # the key reads only them
    full = keyed.transform(records)
    np.testing.assert_array_equal(full, np.hstack([keyed.transform(records, part="public"), key]))


def test_swapped_keys_change_the_decoded_sensitive_column(keyed: FDS, records: dict) -> None:
    public = keyed.transform(records, part="public")
    own = keyed.transform(records, part="private")
    swapped = keyed.transform(_flipped(records), part="private")
    truth = records["table"]["group"].to_numpy()
    with_own = keyed.inverse_transform(public, private=own, modality="table")["group"]
    with_swapped = keyed.inverse_transform(public, private=swapped, modality="table")["group"]
    assert (with_own.to_numpy() == truth).mean() >= 0.9
    assert (with_swapped.to_numpy() != truth).mean() >= 0.9
    neutral = keyed.inverse_transform(public, private="neutral", modality="table")
    prior = keyed.inverse_transform(public, modality="table", seed=1)  # keys drawn per group
    assert len(neutral) == len(prior) == 80
    assert set(prior["group"]) == {"a", "b"}


def test_key_round_trips_through_the_model_directory(keyed: FDS, records: dict, tmp_path) -> None:
    loaded = FDS.load(keyed.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.transform(records), keyed.transform(records), atol=1e-6)
    public = keyed.transform(records, part="public")[:5]
    for private in ("neutral", keyed.transform(records, part="private")[5:10]):
        expected = keyed.inverse_transform(public, private=private, modality="table")
        pd.testing.assert_frame_equal(
            loaded.inverse_transform(public, private=private, modality="table"), expected
        )
    drawn = keyed.inverse_transform(public, modality="table", seed=3)
    pd.testing.assert_frame_equal(loaded.inverse_transform(public, modality="table", seed=3), drawn)
    assert [c.name for c in loaded.sensitive_] == ["group"]


def test_values_given_beside_the_data(tmp_path) -> None:
    from fds.workflows.multimodal import write_grids

    X, factors = _records(24, audio=True)
    shape = factors["shape"].to_numpy()
    model = FDS(fusion="moe", epochs=1, batch_size=12, **KEYED).fit(X, sensitive=shape)
    public = model.transform(X, modalities=["text"], part="public")
    key = model.transform(X, part="private", sensitive=shape)
    assert public.shape == key.shape == (24, 2)
    assert not np.allclose(key, model.transform(X, part="private", sensitive=(shape + 1) % 3))
    with pytest.raises(DataError, match="the key is encoded from the sensitive values"):
        model.transform(X)  # the full code needs the values: they are no column of the table
    assert model.sample(4, seed=0)["table"].shape == (4, 5)
    # the run's grids decode public codes (the values are not at hand there)
    assert [p.name for p in write_grids(model, X, tmp_path)] == ["cross_modal.png", "samples.png"]


def test_bad_combinations_are_typed_errors(records: dict) -> None:
    tiny = {"fusion": "poe", "epochs": 1, "batch_size": 40}
    with pytest.raises(DataError, match="'nosuch' is not a column of the table modality"):
        FDS(sensitive=("nosuch",), **tiny, **KEYED).fit(records)
    with pytest.raises(DataError, match="has no table modality"):
        FDS(sensitive=("group",), **tiny, **KEYED).fit({"text": records["text"]})
    plain = {k: v for k, v in KEYED.items() if k != "preset"}
    with pytest.raises(ConfigError, match="need a private block"):
        FDS(sensitive=("group",), **tiny, **plain).fit(records)
    with pytest.raises(ConfigError, match="needs sensitive attributes"):
        FDS(**tiny, **KEYED).fit(records)
    with pytest.raises(ConfigError, match="mmd_given"):
        FDS(sensitive=("group",), mmd_given=("price",), **tiny, **KEYED).fit(records)
    with pytest.raises(ConfigError, match="DP-SGD"):
        FDS(sensitive=("group",), privacy={"epsilon": 5.0}, **tiny, **KEYED).fit(records)
    keyless = FDS(**tiny, **plain).fit(records)
    with pytest.raises(DataError, match="needs a model with a private block"):
        keyless.transform(records, part="public")
    with pytest.raises(DataError, match="private= needs a model with a private block"):
        keyless.inverse_transform(keyless.transform(records), private="neutral", modality="text")
