"""Alembic environment: migrates the database named by DATABASE_URL (or the -x url=...)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import payments.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
settings = DatabaseSettings(url=url) if url else DatabaseSettings()


def run_migrations_offline() -> None:
    context.configure(
        url=settings.url,
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(settings)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch mode rebuilds a table by copying it and dropping the original, which the
            # foreign keys pointing at it would refuse. The pragma only takes effect outside a
            # transaction, so it goes straight to the driver before Alembic begins one; the
            # references are checked again (foreign_key_check) after the migrations.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if engine.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"migrations left broken foreign keys: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
