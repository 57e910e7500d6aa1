"""The report's "Privacy-utility curve" section, from RUN/privacy_curve.json (`fds privacy-curve`)."""

from __future__ import annotations

from typing import Any

from fds.report import plots
from fds.report.html import Figure, Section, Table
from fds.workflows.privacy_curve import HEADERS, summary_rows


def curve_section(curve: Any) -> Section:
    """Figure (utility and attacker success vs ε) and the table; empty without a curve."""
    section = Section("privacy-curve", "Privacy-utility curve")
    if not isinstance(curve, dict) or not curve.get("points"):
        return section
    sensitive = curve.get("sensitive") or "none given"
    section.intro = (
        f"`fds privacy-curve`: utility = {curve['utility_measure']} on target "
        f"{curve['target']!r}; attacker = the same on sensitive attribute {sensitive!r}, beside its "
        f"majority baseline; membership AUC of the ELBO attack for DP training. Fitted on "
        f"{curve['n_fit']} training rows, scored on {curve['n_test']} held-out rows. {curve['note']}"
    )
    section.figures = [
        Figure(plots.privacy_curve_png(curve["points"]), "Utility and attacker success vs ε")
    ]
    section.tables = [Table([[(h, 1, 1) for h in HEADERS]], summary_rows(curve))]
    return section
