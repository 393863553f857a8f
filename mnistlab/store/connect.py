"""Where the store is and whether it can be opened: addresses, checks before MLflow sees a
SQLite file, the creation lock, and a client that has answered."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_TAG_VAL_LENGTH

from mnistlab.errors import MnistlabError, first_line
from mnistlab.store import sqlite_file

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
    if sqlite_file.is_in_memory(uri):
        return uri  # no file to make absolute: open_store refuses it by name
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # Absolute, so that worker processes started elsewhere write to the same file.
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/", ".")) or "://" not in uri


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _is_lock_error(error: object) -> bool:
    """An error (or a log line) saying SQLite's lock is held by another connection."""
    return "database is locked" in str(error) or "database table is locked" in str(error)


def with_lock_retry(call: Callable[[], T]) -> T:
    """Retry a store call while SQLite reports a lock held by another writer process."""
    start = time.monotonic()
    delay = 0.05
    while True:
        try:
            return call()
        except (MlflowException, sqlite3.OperationalError) as error:
            if not _is_lock_error(error) or time.monotonic() - start > LOCK_RETRY_SECONDS:
                raise
            say_store_busy(time.monotonic() - start)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


BUSY_NOTICE_SECONDS = 5.0  # shorter waits pass unremarked
_busy_said = False


def say_store_busy(waited: float) -> None:
    """One calm line, once per process, when a wait for another process's lock has lasted."""
    global _busy_said
    if waited >= BUSY_NOTICE_SECONDS and not _busy_said:
        _busy_said = True
        print(
            f"mnistlab: the tracking store is busy (another process holds its write lock); "
            f"retrying for up to {LOCK_RETRY_SECONDS:.0f} s.",
            file=sys.stderr,
            flush=True,
        )


class _LockWaitFilter(logging.Filter):
    """MLflow logs every lock wait as an ERROR with a traceback before raising it; mnistlab
    retries those waits itself (and says so once), so the log record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not _is_lock_error(text)


def quiet_lock_waits() -> None:
    """Install the filter on MLflow's SQL logger, once per process."""
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _LockWaitFilter) for f in logger.filters):
        logger.addFilter(_LockWaitFilter())


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
    if not sqlite_file.is_sqlite(path):
        raise TrackingError(
            f"{path} is not a SQLite database, so it cannot be the tracking store. {fix}, or "
            "move that file away."
        )
    if sqlite_file.is_foreign(path):  # MLflow would add its tables beside someone else's
        raise TrackingError(
            sqlite_file.state_message(sqlite_file.SchemaState("foreign"), uri, path)
        )
    if not os.access(path, os.R_OK | (os.W_OK if create else 0)):
        raise TrackingError(f"The tracking store {path} cannot be opened: permission denied.")


def check_plain_file(uri: str) -> None:
    """A plain path (or file: URI) naming an existing file, not a folder store: refused as
    the file it is, the same as sqlite:///PATH would be (check_sqlite_path)."""
    path = Path(uri.removeprefix("file://").removeprefix("file:")).resolve()
    if not path.is_file():
        return
    if sqlite_file.is_sqlite(path):
        raise TrackingError(
            f"{uri} is a SQLite file given as a plain path, which MLflow would take for a "
            f"folder store. Name it as SQLite: --tracking-uri sqlite:///{path}."
        )
    check_sqlite_path(uri, path, create=False)


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


def connect_client(uri: str, path: Path | None) -> MlflowClient:
    """A client that has answered. On SQLite, a process outside mnistlab (the UI, a script)
    may be creating the schema right now, which the lock does not stop: while the file keeps
    changing, a failed open is retried. A store whose schema stays unusable is named at once:
    out of date, newer, not MLflow's, or half-made (finished here when it holds no runs)."""
    deadline = time.monotonic() + (CREATION_RETRY_SECONDS if path is not None else 0)
    delay = 0.1
    repaired = False
    while True:
        try:
            client = MlflowClient(uri)  # no mlflow.set_tracking_uri: it leaks into the env
            with_lock_retry(lambda c=client: c.search_experiments(max_results=1))
            return client
        except Exception:
            if path is None:
                raise
            if not sqlite_file.busy(path):
                state = sqlite_file.schema_state(path)
                if state.kind == "half-made" and state.runs == 0 and not repaired:
                    sqlite_file.finish_half_made(uri, path)
                    repaired = True  # a failed build is not cached by MLflow: the next is afresh
                    continue
                message = sqlite_file.state_message(state, uri, path)
                if message:
                    raise TrackingError(message) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# What a server that cannot be reached says, deep in urllib3's retry message, in plain words:
# that message is hundreds of characters of pool and class names, cut mid-word by any limit.
NETWORK_REASONS = (
    ("Connection refused", "connection refused: nothing listens at that address"),
    ("Failed to resolve", "the host name does not resolve"),
    ("Name or service not known", "the host name does not resolve"),
    ("timed out", "timed out"),
    ("No route to host", "no route to the host"),
)


def network_reason(error: BaseException) -> str:
    """Why a server could not be reached, in a few words; else the error's first line."""
    text = str(error)
    for marker, words in NETWORK_REASONS:
        if marker in text:
            return words
    return first_line(error)


def open_error(uri: str, path: Path | None, error: Exception) -> str:
    """One sentence per way a store fails to open: each names what happened and the fix."""
    reason = first_line(error)
    if path is None:
        reason = network_reason(error)
        return (
            f"The MLflow tracking store {uri} cannot be reached ({reason}). Start the server or "
            "fix the address (--tracking-uri or MLFLOW_TRACKING_URI); leave both unset to use "
            f"the local SQLite file ./{DEFAULT_STORE_FILE}."
        )
    if _is_lock_error(error):
        return (
            f"The tracking store {path} stayed locked by another process for over "
            f"{LOCK_RETRY_SECONDS:.0f} s (a long query, a backup or another writer). Wait for it "
            "to finish, then run the command again."
        )
    if "readonly" in reason or "read-only" in reason:
        return (
            f"The tracking store {path} is read-only here ({reason}): SQLite must write beside it "
            "even to read it in WAL mode. Make the file and its folder writable, or copy it."
        )
    return (
        f"The SQLite tracking store {path} cannot be opened ({reason}). Pass another "
        "--tracking-uri, or move that file away and run the command again to start a new store."
    )


def check_loggable(metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Refuse, before anything is written, what MLflow would refuse midway: a key over its
    length limit or a tag value over its own."""
    for key in [*metrics, *tags]:
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            raise TrackingError(
                f"The MLflow key {key!r} is {len(key)} characters, more than the "
                f"{MAX_ENTITY_KEY_LENGTH} MLflow allows; nothing was written. Shorten the arm "
                "name it holds in the study's spec (a new arm name trains new runs)."
            )
    for key, value in tags.items():
        if len(value) > MAX_TAG_VAL_LENGTH:
            raise TrackingError(
                f"The MLflow tag {key!r} is {len(value)} characters long, more than the "
                f"{MAX_TAG_VAL_LENGTH} MLflow allows; nothing was written."
            )
