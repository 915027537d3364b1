"""Values in alert texts, written in the unit a rule declares: ``app.units.fmt_unit`` (it lives in
``app/`` so the recovery layer, below the alerts, writes its knobs' values the same way).

    fmt_unit(2.7, "s")          # '2.7s'
"""
from __future__ import annotations

from app.units import fmt_unit

__all__ = ["fmt_unit"]
