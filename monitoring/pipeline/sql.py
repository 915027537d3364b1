"""Run a textual statement on either session flavour.

SQLModel's ``AsyncSession`` deprecates ``execute`` in favour of ``exec``; a plain
SQLAlchemy ``AsyncSession`` only has ``execute``. ``run`` picks the right one::

    rows = (await run(session, text("SELECT 1 WHERE :x = 1"), {"x": 1})).all()
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, SupportsFloat

from sqlalchemy.engine import Result

from tokens.sql import dialect_name

__all__ = ["dialect_name", "run", "sql_float"]


async def run(session: Any, statement: Any, params: Mapping[str, Any] | None = None) -> Result[*tuple[Any, ...]]:
    """Execute ``statement`` with bound ``params``; returns the row result.

    Rows of a textual statement have as many columns as its SQL selects, of types only the
    database knows: ``Result[*tuple[Any, ...]]`` (what SQLAlchemy's ``execute`` returns for
    it), so ``for kind, n in rows`` unpacks any width."""
    exec_ = getattr(session, "exec", None)
    if exec_ is not None:
        return await exec_(statement, params=params)
    return await session.execute(statement, params)


def sql_float(value: SupportsFloat | None) -> float | None:
    """A number read from SQL (int, float, ``Decimal`` from PostgreSQL's NUMERIC) or NULL, as a float."""
    return None if value is None else float(value)
