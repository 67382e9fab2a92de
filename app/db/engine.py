"""Engine and session construction.

SQLite (a file) is the zero-setup default; PostgreSQL is used when the URL names it. Whatever the
backend, callers get the same behaviour: foreign keys enforced, transactions that really begin at
``BEGIN``, and sessions whose objects stay readable after commit.

The embedded SQLite takes concurrent use (the API's threads and the storage writer at once):

- WAL journal: readers never block the writer, nor the writer readers;
- a busy timeout: a writer waits for the lock instead of failing at once;
- write transactions take the write lock first (``BEGIN IMMEDIATE``). A deferred transaction that
  read first and then writes cannot wait for the lock (SQLite refuses to, as waiting could deadlock):
  it fails with "database is locked" whatever the timeout. Sessions from :meth:`Sessions.begin` and
  :meth:`Sessions.writer` are write transactions; plain sessions (``sessions()``) read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

# seconds a SQLite writer waits for the lock before giving up
_SQLITE_BUSY_TIMEOUT = 15.0
# execution option marking a connection whose transactions write (BEGIN IMMEDIATE on SQLite)
_WRITES = "hotline_writes"


def normalize_url(url: str | URL) -> URL:
    """Point bare PostgreSQL URLs at psycopg 3 (SQLAlchemy would pick psycopg2, which we don't ship)."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Build an engine for ``url``; extra keyword arguments go to :func:`sqlalchemy.create_engine`."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)

    connect_args = kwargs.pop("connect_args", {})
    # The recorder runs in a worker thread, the API in the threadpool: connections move between threads.
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", _SQLITE_BUSY_TIMEOUT)
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the "begin" hook below): the sqlite3 module's
        # own handling starts transactions only at the first write, so reads before it are not
        # isolated and SAVEPOINTs misbehave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not in_memory:
                # Readers (the API) no longer block the writer (the recorder), and vice versa.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writes = connection.get_execution_options().get(_WRITES, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


class Sessions(sessionmaker[Session]):
    """Sessions for an engine: ``sessions()`` to read, ``sessions.begin()`` / ``writer()`` to write.

    Objects stay loaded after commit so they can be returned to callers.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=engine, expire_on_commit=False)
        self._write_bind = engine.execution_options(**{_WRITES: True})

    def writer(self) -> Session:
        """A session whose transactions write: on SQLite they take the write lock at their start."""
        return self(bind=self._write_bind)

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:  # type: ignore[override]
        """A write transaction, committed at the end of the block (rolled back on an exception)."""
        with self.writer() as session, session.begin():
            yield session


def session_factory(engine: Engine) -> Sessions:
    """Sessions for ``engine`` (see :class:`Sessions`)."""
    return Sessions(engine)
