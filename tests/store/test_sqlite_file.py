"""The SQLite store's file while others use it: readers never hurt a writer, odd addresses and
damaged schemas are named, lock waits are calm (issue: looking at a study while it trains)."""

import builtins
import io
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store import connect, sqlite_file
from mnistlab.store.connect import TrackingError
from mnistlab.store.store import open_store
from mnistlab.study.runner import tracked_train
from tests.conftest import TINY

# A process like a study: it holds MLflow's pooled connection, opens the store again (as each
# run does), writes, then waits for a reader to come and go and writes once more.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from mnistlab.store.store import open_store
    uri, go = sys.argv[1], sys.argv[2]
    client = open_store(uri).client
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "m", 0.0, step=0)
    open_store(uri)
    client.log_metric(run.info.run_id, "m", 1.0, step=1)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.05)
    print("wal", os.path.exists(uri.removeprefix("sqlite:///") + "-wal"), flush=True)
    client.log_metric(run.info.run_id, "m", 2.0, step=2)
    print("written", flush=True)
    """
)
READER = "import sys; from mnistlab.store.store import open_store; open_store(sys.argv[1], create=False).experiment_names()"


def test_a_reader_that_comes_and_goes_leaves_a_live_writer_its_wal(tmp_path):
    """The cause: a plain open() of the file in the writer's process dropped its SQLite locks,
    so the reader's exit took it for the last connection and deleted the WAL under it."""
    uri, go = f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, uri, str(go)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(2):
            subprocess.run([sys.executable, "-c", READER, uri], check=True)
        go.touch()
        out, _ = writer.communicate(timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == 0
    assert out.split() == ["wal", "True", "written"]
    with sqlite3.connect(tmp_path / "r.db") as connection:
        assert connection.execute("SELECT count(*) FROM metrics").fetchone()[0] == 3
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_no_mnistlab_code_opens_the_store_file_outside_sqlite(tiny_mnist, tmp_path, monkeypatch):
    """The kind: every path that touches the file (open, check, histories, a tracked run with
    its writer thread and heartbeat) goes through SQLite, never a descriptor of its own."""
    db = tmp_path / "mlflow.db"
    database_files = {str(db), *(f"{db}-{suffix}" for suffix in ("wal", "shm", "journal"))}
    touched = []
    real_open, real_os_open = builtins.open, os.open

    def watch(file, *args, **kwargs):
        if str(file) in database_files:
            touched.append(str(file))
        return real_open(file, *args, **kwargs)

    def watch_os(file, *args, **kwargs):
        if str(file) in database_files:
            touched.append(str(file))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watch)
    monkeypatch.setattr(io, "open", watch)
    monkeypatch.setattr(os, "open", watch_os)
    uri = f"sqlite:///{db}"
    store = open_store(uri)
    experiment_id = store.experiment_id("unit")
    run_id, _ = tracked_train(
        PlannedRun("base", RunConfig(seed=1, **TINY)), tiny_mnist, store, experiment_id, "unit"
    )
    again = open_store(uri, create=False)
    assert len(again.histories([run_id], ["train_loss"])) == 10
    assert touched == []


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:"])
def test_a_store_that_cannot_outlive_the_command_is_refused(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrackingError, match="in-memory SQLite database") as error:
        open_store(uri)
    assert "--tracking-uri sqlite:///mlflow.db" in str(error.value)
    assert list(tmp_path.iterdir()) == []  # no file called :memory:


def test_a_file_that_is_not_sqlite_is_named_without_opening_it_as_a_file(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("just some notes, long enough to be more than a SQLite header")
    with pytest.raises(TrackingError, match="is not a SQLite database"):
        open_store(f"sqlite:///{path}")
    assert sqlite_file.is_sqlite(tmp_path / "notes.db") is False


def _old_quiet(path: Path) -> None:
    """Make the file look untouched for a minute: no process is creating it."""
    past = time.time() - 60
    for file in path.parent.glob(path.name + "*"):
        os.utime(file, (past, past))


def _store_at(path: Path, revision: str) -> None:
    """A store migrated by MLflow's own alembic scripts up to revision, not to the head."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as Initial

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    Initial.metadata.create_all(engine)
    config = _get_alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def _previous_head() -> str:
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    script = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    return script.get_revision(script.get_current_head()).down_revision


def _forget_stores() -> None:
    """MLflow keeps one store object per address for the process; a test that changes the
    file behind its back makes the next open build it afresh, as a new command would."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    _tracking_store_registry._get_store_with_resolved_uri.cache_clear()


def _one_revision_behind(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (_previous_head(),))
    _forget_stores()


def test_an_out_of_date_schema_gets_the_whole_upgrade_hint_at_once(tmp_path):
    path = tmp_path / "old.db"
    open_store(f"sqlite:///{path}").experiment_id("x")
    _one_revision_behind(path)
    started = time.monotonic()
    with pytest.raises(TrackingError) as error:
        open_store(f"sqlite:///{path}")
    message = str(error.value)
    assert time.monotonic() - started < 20  # no minute of retries on a file changed lately
    assert "out-of-date MLflow schema" in message
    assert f"`mlflow db upgrade sqlite:///{path}`" in message
    assert "cannot be reached" not in message and "Start the server" not in message


def test_a_new_store_left_half_made_by_a_crashed_migration_is_finished(tmp_path):
    """The state two programs creating one store leave: a migration stopped after making its
    scratch copy of latest_metrics. A store with no runs is finished as `mlflow db upgrade`
    would; plain MLflow cannot open it before."""
    path = tmp_path / "half.db"
    _store_at(path, "a8c4a736bde6")  # just before the migration that rebuilds latest_metrics
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE _alembic_tmp_latest_metrics AS SELECT * FROM latest_metrics"
        )
    _old_quiet(path)
    assert sqlite_file.schema_state(path).kind == "half-made"
    _forget_stores()
    with pytest.raises(Exception, match="_alembic_tmp_latest_metrics|out-of-date"):
        MlflowClient(f"sqlite:///{path}").search_experiments()
    store = open_store(f"sqlite:///{path}")
    assert store.experiment_id("after") is not None
    state = sqlite_file.schema_state(path)
    assert state.kind == "current" and state.leftovers == ()


def test_a_half_made_store_with_runs_is_named_not_touched(tmp_path):
    path = tmp_path / "used.db"
    store = open_store(f"sqlite:///{path}")
    store.client.create_run(store.experiment_id("x"))
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE _alembic_tmp_metrics AS SELECT * FROM metrics")
    _one_revision_behind(path)
    _old_quiet(path)
    with pytest.raises(TrackingError) as error:
        open_store(f"sqlite:///{path}")
    message = str(error.value)
    assert "half-made" in message and "_alembic_tmp_metrics" in message
    assert "holds 1 runs" in message and "mlflow db upgrade" in message
    assert sqlite_file.schema_state(path).leftovers == ("_alembic_tmp_metrics",)


def test_a_sqlite_file_that_is_not_mlflows_is_named(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    _old_quiet(path)
    with pytest.raises(TrackingError, match="not an MLflow tracking store"):
        open_store(f"sqlite:///{path}")


def test_a_long_lock_is_waited_out_with_one_calm_line(tmp_path, capfd):
    """Another process holds the write lock past SQLite's busy timeout: the run's write is
    retried and lands; what is printed is one line, no MLflow ERROR and no traceback."""
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    experiment_id = store.experiment_id("x")
    capfd.readouterr()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(float(sys.argv[2]));"
            "c.execute('COMMIT')",
            str(path),
            "8",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    old = connect.BUSY_NOTICE_SECONDS
    try:
        connect._busy_said, connect.BUSY_NOTICE_SECONDS = False, 2.0
        with _short_sqlite_busy_timeout():
            made = store.experiment_id("made-during-the-lock")
    finally:
        connect.BUSY_NOTICE_SECONDS = old
        holder.wait(timeout=30)
    assert store.find_experiment("made-during-the-lock") is not None and made != experiment_id
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "ERROR" not in out + err
    assert err.count("tracking store is busy") == 1


class _short_sqlite_busy_timeout:  # noqa: N801 - a context manager used like a function
    """MLflow waits 20 s inside SQLite before it raises; 1 s keeps the test short while the
    lock (8 s) still outlasts it, so mnistlab's own retry is what waits."""

    def __enter__(self):
        from mlflow.store.db import utils

        self._text = utils.sql.text
        utils.sql.text = lambda s: self._text(
            s.replace("busy_timeout = 20000", "busy_timeout = 1000")
        )

    def __exit__(self, *exc):
        from mlflow.store.db import utils

        utils.sql.text = self._text
