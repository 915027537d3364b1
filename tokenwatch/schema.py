"""Every table's metadata in one place, for Alembic and for tests.

The table modules are imported for their side effect of registering on
``SQLModel.metadata``; nothing here defines a table.
"""
from __future__ import annotations

from sqlmodel import SQLModel

import alerts.models  # noqa: F401
import app.processes  # noqa: F401
import charts.models  # noqa: F401
import delivery.models  # noqa: F401
import monitoring.models  # noqa: F401
import recovery.models  # noqa: F401
import tokens.models  # noqa: F401

metadata = SQLModel.metadata
