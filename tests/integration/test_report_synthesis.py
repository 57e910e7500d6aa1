"""The report's synthetic-table section says each figure and shows the culprit columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fds.evaluation.dcr import dcr_share
from fds.evaluation.fidelity import table_fidelity
from fds.evaluation.synthetic import table_quality
from fds.workflows.report_synthesis import synthesis_section


def _evaluation() -> dict:
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"age": rng.integers(21, 65, 300), "sex": rng.choice(["f", "m"], 300)})
    real.loc[:2, "sex"] = "x"  # 1%: a category the samples must hold
    synthetic = pd.DataFrame({"age": rng.integers(21, 65, 300), "sex": rng.choice(["f", "m"], 300)})
    synthetic.loc[0, "age"] = 115
    train, held = real.iloc[:200], real.iloc[200:]
    return {
        "synthetic": {
            "kind": "table",
            "n_synthetic": len(synthetic),
            "quality": table_quality(held, synthetic),
            "fidelity": table_fidelity(train, synthetic),
            "dcr": dcr_share(train, held, synthetic, n_subsets=2),
        }
    }


def test_the_section_names_the_out_of_support_column_and_the_absent_category() -> None:
    section = synthesis_section(_evaluation())
    headline, columns = section.tables
    figures = dict(headline.rows)
    assert figures["out of support rows"] == f"{1 / 300:.4g}"
    assert "all 1 pairs" in figures["column pair trends"]
    assert "sdmetrics pair trends thresholded" in figures
    rows = {row[0]: row for row in columns.rows}
    assert rows["age"][2] == f"{1 / 300:.4g}" and "115" in rows["age"][4]
    assert rows["sex"][6] == "x"


def test_the_section_is_empty_without_a_scored_table() -> None:
    assert synthesis_section(None).is_empty
    assert synthesis_section({"synthetic": {"kind": "images"}}).is_empty
