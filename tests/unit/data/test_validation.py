"""`fds.data.validation.as_matrix`: the check every latent/feature matrix passes through."""

from __future__ import annotations

import numpy as np
import pytest

from fds.data.validation import FLOAT32_MAX, as_matrix
from fds.errors import DataError


@pytest.mark.parametrize(
    ("value", "needle"),
    [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (1e300, "float32"), (-1e39, "float32")],
)
def test_a_matrix_with_a_value_float32_cannot_hold_is_refused(value, needle) -> None:
    Z = np.zeros((3, 2))
    Z[1, 0] = value
    with pytest.raises(DataError, match=needle) as info:
        as_matrix(Z, "latents")
    assert str(info.value).startswith("latents ")


def test_the_largest_float32_magnitude_is_accepted() -> None:
    Z = np.array([[FLOAT32_MAX, -FLOAT32_MAX]])
    assert np.array_equal(as_matrix(Z, "latents"), Z)
