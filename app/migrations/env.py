"""Alembic environment.

The URL comes, in order, from ``config.attributes["url"]`` (set by :func:`app.db.migrate.upgrade`),
``alembic -x url=...``, ``sqlalchemy.url`` in the ini, then the service settings
(``HOTLINE_DATABASE_URL``). Logging is left alone: this runs inside the service at start.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import event, pool, text

from app.db.engine import make_engine, normalize_url
from app.db.models import Base, UTCDateTime
from app.settings import get_settings

# Any constant works; it only has to be the same for every instance of the service.
_MIGRATION_LOCK_KEY = 0x12345

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().database_url
    )
    return normalize_url(url).render_as_string(hide_password=False)


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    # Keep revisions free of imports from app code, which changes after the revision is written.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        # Batch migrations drop and recreate tables; with foreign keys enforced that would fail
        # (or cascade). The pragma only takes effect outside a transaction, hence at connect.
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Several instances starting at once must not run the same migration twice.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
