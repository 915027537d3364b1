"""Alembic migrations. Run them with ``tokenwatch migrate`` (see ``app.migrate``)."""
