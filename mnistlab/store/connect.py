"""Where the store is and whether it can be opened: addresses, checks before MLflow sees a
SQLite file, the creation lock, and a client that has answered."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mnistlab.errors import MnistlabError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; creation is then not serialised
    fcntl = None


DEFAULT_STORE_FILE = "mlflow.db"
LOCK_RETRY_SECONDS = 120.0
T = TypeVar("T")


class TrackingError(MnistlabError):
    """The tracking store cannot be used; the message says why and what to do."""


def default_tracking_uri() -> str:
    return f"sqlite:///{Path(DEFAULT_STORE_FILE).resolve()}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # Absolute, so that worker processes started elsewhere write to the same file.
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/", ".")) or "://" not in uri


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _is_lock_error(error: Exception) -> bool:
    return "database is locked" in str(error) or "database table is locked" in str(error)


def with_lock_retry(call: Callable[[], T]) -> T:
    """Retry a store call while SQLite reports a lock held by another writer process."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return call()
        except (MlflowException, sqlite3.OperationalError) as error:
            if not _is_lock_error(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_path(uri: str, path: Path, create: bool) -> None:
    """Refuse at once what MLflow would retry for minutes or fail on with a traceback."""
    fix = "Pass another --tracking-uri (or MLFLOW_TRACKING_URI)"
    if path.is_dir():
        raise TrackingError(f"The tracking store {uri} is a folder, not a SQLite file. {fix}.")
    if not path.exists():
        if not create:
            raise TrackingError(
                f"There is no tracking store at {path}: nothing has been tracked there. Run "
                "`mnistlab study` or `mnistlab train` first, or pass the --tracking-uri where "
                "the runs are."
            )
        if not path.parent.is_dir():
            raise TrackingError(
                f"The tracking store {uri} cannot be created: folder {path.parent} does not "
                f"exist. Create it, or {fix[0].lower() + fix[1:]}."
            )
        if not os.access(path.parent, os.W_OK):
            raise TrackingError(
                f"The tracking store {uri} cannot be created: folder {path.parent} is not "
                f"writable. {fix}."
            )
        return
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise TrackingError(
            f"{path} is not a SQLite database, so it cannot be the tracking store. {fix}, or "
            "move that file away."
        )
    if not os.access(path, os.R_OK | (os.W_OK if create else 0)):
        raise TrackingError(f"The tracking store {path} cannot be opened: permission denied.")


CREATION_RETRY_SECONDS = 60.0  # a store another process is creating is ready well within this


@contextlib.contextmanager
def creation_lock(path: Path | None) -> Iterator[None]:
    """Serialise opening (creating, upgrading) a SQLite store across mnistlab processes.

    MLflow creates and migrates the schema on first open; two processes doing it at once
    race (tables half made, `AttributeError: dimension_attributes`). An exclusive lock on
    <store>.lock beside the file lets one create while the others wait, then find it made.
    """
    if path is None or fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _being_created(path: Path | None) -> bool:
    """A SQLite store written to in the last minute: perhaps another process creating it. An
    old file that fails to open is unusable, and is reported at once."""
    if path is None:
        return False
    try:
        return time.time() - path.stat().st_mtime < CREATION_RETRY_SECONDS
    except OSError:
        return True  # not there (yet): the other process has not written it


def connect_client(uri: str, path: Path | None) -> MlflowClient:
    """A client that has answered. On SQLite, a process outside mnistlab (the UI, a script)
    may be creating the schema right now, which the lock does not stop: its half-made
    tables fail our open, so that is retried until the schema is whole."""
    deadline = time.monotonic() + (CREATION_RETRY_SECONDS if path is not None else 0)
    delay = 0.1
    while True:
        try:
            client = MlflowClient(uri)  # no mlflow.set_tracking_uri: it leaks into the env
            with_lock_retry(lambda c=client: c.search_experiments(max_results=1))
            return client
        except Exception:
            if time.monotonic() > deadline or not _being_created(path):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
