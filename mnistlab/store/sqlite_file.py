"""A SQLite tracking store's file: checked, read and repaired only through SQLite itself.

Why only through SQLite: its locks are POSIX advisory locks, which belong to a process, not
to a descriptor. Closing *any* descriptor of the database file (a plain open() to read its
header, say) silently drops every lock that the process's connections hold. Another process
closing its last connection then believes it is the last one, checkpoints and deletes the
WAL under the live writer, whose next write fails with "disk I/O error" (SQLite's "How To
Corrupt An SQLite Database File", section 2.2). Connections made by the sqlite3 module share
one lock table per file within a process, so SQLite defers their closes safely. Every
mnistlab code path that touches the store's file outside MLflow goes through this module.

Also here: what state an MLflow schema is in (new, current, out of date, left half-made by
an interrupted migration, made by a newer MLflow), and finishing a half-made new store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

QUIET_SECONDS = 5.0  # a schema being created or migrated changes the file at least this often
TMP_PREFIX = "_alembic_tmp_"  # alembic's scratch copy of a table it rebuilds on SQLite
IN_MEMORY_NAMES = ("", ":memory:")


def is_in_memory(uri: str) -> bool:
    """sqlite:// and sqlite:///:memory: (and file::memory:-style URIs): a database that dies
    with the connection, so every run written to it would be lost when the command ends."""
    if not uri.startswith("sqlite:"):
        return False
    path = uri.removeprefix("sqlite:").removeprefix("///").removeprefix("//")
    name = path.split("?", 1)[0]
    return name in IN_MEMORY_NAMES or "mode=memory" in uri or name.startswith("file::memory:")


@contextlib.contextmanager
def read_only(path: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A read-only sqlite3 connection to the store, closed after use (safe: see above)."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        yield connection
    finally:
        connection.close()


def is_sqlite(path: Path) -> bool:
    """Whether an existing file is a SQLite database (an empty file counts: SQLite makes it one).

    Asked of SQLite rather than by reading the header with open(): see the module docstring.
    """
    if path.stat().st_size == 0:
        return True
    try:
        with read_only(path) as connection:
            connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error) or "malformed" in str(error):
            return False
        raise
    return True


def use_wal(path: Path) -> None:
    """WAL lets readers and one writer work at once; the setting is kept in the file."""
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def busy(path: Path) -> bool:
    """The file or its WAL changed within QUIET_SECONDS: someone may be creating the schema."""
    now = time.time()
    for file in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            if now - file.stat().st_mtime < QUIET_SECONDS:
                return True
    return not path.exists()


def _tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    return {name for (name,) in rows}


def is_foreign(path: Path) -> bool:
    """A SQLite database with tables, none of them MLflow's experiments: someone else's file."""
    with read_only(path) as connection:
        tables = _tables(connection)
    return bool(tables - {"alembic_version"}) and not any(
        t in tables for t in ("experiments", TMP_PREFIX + "experiments")
    )


@dataclass(frozen=True)
class SchemaState:
    """What MLflow's schema in a store looks like. kind is one of: new (no tables yet), current,
    out-of-date, half-made (a migration stopped midway), newer (made by a newer MLflow),
    foreign (tables, but not MLflow's)."""

    kind: str
    found: str | None = None  # the schema revision in the file
    expected: str | None = None  # this MLflow's head revision
    leftovers: tuple[str, ...] = ()  # alembic's scratch tables left behind
    runs: int = 0


def _head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision  # imports alembic: lazily

    return _get_latest_schema_revision()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    script = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    return {revision.revision for revision in script.walk_revisions()}


def schema_state(path: Path) -> SchemaState:
    """Read the schema's state from the file (read-only; no MLflow engine)."""
    with read_only(path) as connection:
        tables = _tables(connection)
        found = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            found = row[0] if row else None
        runs = (
            connection.execute("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0
        )
    leftovers = tuple(sorted(t for t in tables if t.startswith(TMP_PREFIX)))
    expected = _head_revision() if tables else None
    if not tables - {"alembic_version"}:
        return SchemaState("new", found, expected)
    if "experiments" not in tables:
        return SchemaState("foreign")
    if leftovers or found is None:
        return SchemaState("half-made", found, expected, leftovers, runs)
    if found == expected:
        return SchemaState("current", found, expected, runs=runs)
    kind = "out-of-date" if found in _known_revisions() else "newer"
    return SchemaState(kind, found, expected, runs=runs)


def finish_half_made(uri: str, path: Path) -> None:
    """Finish a migration that stopped midway, as `mlflow db upgrade` would, once alembic's
    scratch tables are dealt with: a scratch copy beside its intact table is dropped; one whose
    table was already dropped is renamed into its place (batch mode's last step)."""
    import sqlalchemy
    from mlflow.store.db.utils import _upgrade_db

    state = schema_state(path)
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.begin() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            for scratch in state.leftovers:
                table = scratch.removeprefix(TMP_PREFIX)
                if table in tables:
                    connection.exec_driver_sql(f'DROP TABLE "{scratch}"')
                else:
                    connection.exec_driver_sql(f'ALTER TABLE "{scratch}" RENAME TO "{table}"')
        _upgrade_db(engine)
    finally:
        engine.dispose()


def state_message(state: SchemaState, uri: str, path: Path) -> str | None:
    """The one-paragraph explanation for a store MLflow cannot use as it is; None if usable."""
    upgrade = f"`mlflow db upgrade {uri}`"
    if state.kind == "out-of-date":
        return (
            f"The tracking store {path} has an out-of-date MLflow schema (revision {state.found}; "
            f"this MLflow expects {state.expected}). Back the file up, then run {upgrade} to "
            "migrate it, or pass another --tracking-uri."
        )
    if state.kind == "newer":
        return (
            f"The tracking store {path} was made by a newer MLflow (schema revision "
            f"{state.found}, unknown to this one). Upgrade mlflow in this environment, or pass "
            "another --tracking-uri."
        )
    if state.kind == "foreign":
        return (
            f"{path} is a SQLite database but not an MLflow tracking store (it has no "
            "experiments table). Pass another --tracking-uri, or move that file away."
        )
    if state.kind == "half-made":
        leftovers = ", ".join(state.leftovers) or "no alembic_version"
        return (
            f"The tracking store {path} was left half-made by an MLflow schema migration that "
            f"stopped midway ({leftovers}), most likely two programs creating it at the same "
            f"moment. It holds {state.runs} runs, so mnistlab does not repair it by itself: back "
            f"the file up, drop the leftover {TMP_PREFIX}* tables (`sqlite3 {path} "
            f"'DROP TABLE <name>'`), then run {upgrade}."
        )
    return None
