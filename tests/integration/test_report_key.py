"""The report's key section and traversals on a run whose model holds a key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fds.data.files import LoadedData, read_data
from fds.estimator import FDS
from fds.workflows.evaluate import evaluate_run
from fds.workflows.report import _traversal_codes, write_report


@pytest.fixture(scope="module")
def shapes() -> LoadedData:
    return read_data("shapes", n=300, seed=0)


@pytest.fixture(scope="module")
def keyed(shapes: LoadedData) -> FDS:
    model = FDS(preset="fds", latent_dim=5, private_dim=2, hidden_dims=[32], epochs=1)
    model.set_params(verbose=False)
    return model.fit(shapes.X, sensitive=shapes.factors[["shape"]].add_prefix("factor:"))


@pytest.mark.slow
def test_key_section_shows_the_decodings_and_the_key_figures(
    keyed: FDS, shapes: LoadedData, tmp_path: Path
) -> None:
    evaluate_run(keyed, shapes, out=tmp_path, fast=True, iwae_k=2)
    html = write_report(tmp_path, model=keyed, data=shapes).read_text()
    section = html[html.index('id="key"') :]
    assert "Rows 3 and 4 decode the public block alone" in section
    assert "The key on " in section and "swap success" in section and "best attacker" in section
    assert "(key)" in html[html.index('id="traversals"') :]


def test_traversals_start_from_a_record_and_put_active_dimensions_first(
    keyed: FDS, shapes: LoadedData
) -> None:
    model, view = keyed, shapes.X[:200]
    z, dims, spread = _traversal_codes(model, view)
    assert sorted(dims) == list(range(5))
    assert list(spread[dims]) == sorted(spread, reverse=True)
    codes = z.reshape(len(dims), -1, 5)
    first = model.transform(view[:1])[0]
    for row, d in enumerate(dims):
        others = [k for k in range(5) if k != d]
        np.testing.assert_allclose(codes[row][:, others], np.tile(first[others], (7, 1)), rtol=1e-5)
        assert np.ptp(codes[row][:, d]) == pytest.approx(6 * spread[d], rel=1e-4)
