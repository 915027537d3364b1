"""Run a textual statement on either session flavour.

SQLModel's ``AsyncSession`` deprecates ``execute`` in favour of ``exec``; a plain
SQLAlchemy ``AsyncSession`` only has ``execute``. ``run`` picks the right one::

    rows = (await run(session, text("SELECT 1 WHERE :x = 1"), {"x": 1})).all()
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Result


async def run(session: Any, statement: Any, params: Mapping[str, Any] | None = None) -> Result[Any]:
    """Execute ``statement`` with bound ``params``; returns the row result."""
    exec_ = getattr(session, "exec", None)
    if exec_ is not None:
        return await exec_(statement, params=params)
    return await session.execute(statement, params)
