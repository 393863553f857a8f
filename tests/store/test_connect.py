"""Store addresses checked before use: an unusable one is refused at once with the fix."""

import time

import pytest

from tests.conftest import TINY_ARGS, invoke, refused


@pytest.mark.parametrize(
    ("make", "uri", "phrase"),
    [
        (lambda p: (p / "dir.db").mkdir(), "sqlite:///{p}/dir.db", "is a folder, not a SQLite file"),
        (lambda p: (p / "bad.db").write_text("not a db"), "sqlite:///{p}/bad.db", "is not a SQLite database"),
        (lambda p: None, "notascheme://x", "cannot be reached"),
        (lambda p: None, "./mlruns", "folder store"),
    ],
)  # fmt: skip
def test_unusable_stores_fail_fast_with_the_fix(
    in_tmp, tiny_mnist_dir, unverified, make, uri, phrase
):
    make(in_tmp)
    start = time.monotonic()
    result = invoke(
        "train",
        "--data-dir",
        str(tiny_mnist_dir),
        "--tracking-uri",
        uri.format(p=in_tmp),
        *TINY_ARGS,
    )
    assert time.monotonic() - start < 30
    refused(result, phrase, "--tracking-uri")
    assert not (in_tmp / "mlruns").exists()
