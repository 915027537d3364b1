"""The Core ``Table`` behind a SQLModel ``table=True`` model, typed.

SQLModel sets ``Model.__table__`` at class creation but does not declare it, so a type checker
sees no such attribute. Core statements (bulk ``insert``, ``delete``, ``TABLE.c.column``) go
through this one accessor instead::

    TOKENS = table_of(Token)
    await session.exec(insert(TOKENS), rows)
    select(TOKENS.c.id).where(TOKENS.c.status == "active")
"""
from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """``model.__table__``; ``TypeError`` when ``model`` is not a table model."""
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a SQLModel table model (table=True)")
    return table
