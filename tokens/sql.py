"""One helper to run a Core statement on either session flavour.

SQLModel's ``AsyncSession.execute`` is deprecated in favour of ``exec``; plain SQLAlchemy
sessions only have ``execute``. Core ``select()`` results are the same either way::

    rows = (await execute(session, select(TOKENS.c.id))).all()
    await execute(session, insert(CHECKS), [{"...": 1}, {"...": 2}])   # executemany
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


async def execute(session: Any, statement: Any,
                  params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Any:
    if hasattr(session, "exec"):
        return await session.exec(statement, params=params)
    return await session.execute(statement, params)


def dialect_name(session: Any) -> str:
    """The database the session talks to: ``"postgresql"`` or ``"sqlite"``.

    ``get_bind()`` resolves the engine (``session.bind`` is Optional: None on an unbound session,
    where ``get_bind`` raises ``UnboundExecutionError`` rather than guessing a dialect)."""
    return str(session.get_bind().dialect.name)
