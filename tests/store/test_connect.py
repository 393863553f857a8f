"""Store addresses checked before use: an unusable one is refused at once with the fix."""

import sqlite3
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import TINY_ARGS, invoke, refused


@pytest.mark.parametrize(
    ("make", "uri", "phrase"),
    [
        (lambda p: (p / "dir.db").mkdir(), "sqlite:///{p}/dir.db", "is a folder, not a SQLite file"),
        (lambda p: (p / "bad.db").write_text("not a db"), "sqlite:///{p}/bad.db", "is not a SQLite database"),
        (lambda p: None, "notascheme://x", "cannot be reached"),
        (lambda p: None, "./mlruns", "folder store"),
        (lambda p: (p / "atext.txt").write_text("notes"), "atext.txt", "is not a SQLite database"),
        (lambda p: (p / "atext.txt").write_text("notes"), "file://{p}/atext.txt", "is not a SQLite database"),
        (lambda p: sqlite3.connect(p / "m.db").execute("create table t (x)"), "{p}/m.db", "Name it as SQLite: --tracking-uri sqlite:///"),
    ],
)  # fmt: skip
def test_unusable_stores_fail_fast_with_the_fix(
    in_tmp, tiny_mnist_dir, unverified, monkeypatch, make, uri, phrase
):
    """Fast because refused at once: the files before MLflow sees them, a bad address on the
    client's first answer; nothing waits to retry and nothing trains."""
    import mnistlab.store.connect
    import mnistlab.study.runner

    clients = []

    def client(*args, **kwargs):
        clients.append(args)
        return MlflowClient(*args, **kwargs)

    def must_not(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} for a store that cannot be used")

        return fail

    monkeypatch.setattr(mnistlab.store.connect, "MlflowClient", client)
    monkeypatch.setattr(time, "sleep", must_not("waited"))
    monkeypatch.setattr(mnistlab.study.runner, "tracked_train", must_not("trained"))
    make(in_tmp)
    result = invoke(
        "train",
        "--data-dir",
        str(tiny_mnist_dir),
        "--tracking-uri",
        uri.format(p=in_tmp),
        *TINY_ARGS,
    )
    refused(result, phrase, "--tracking-uri")
    assert len(clients) == (1 if uri.startswith("notascheme") else 0)  # asked once, or never
    assert not (in_tmp / "mlruns").exists()
