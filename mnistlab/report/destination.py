"""Where the report is written: the folder checked before any work, and the whole set swapped
in at once, so a failure never leaves a half-written report, nor new tables beside an old page."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mnistlab.errors import MnistlabError


class ReportError(MnistlabError):
    """The report cannot be written where asked; the message says why and what to do."""


def check_destination(out_dir: Path, study: str) -> None:
    """Refuse an output folder that cannot take the report, before seconds of rendering: the
    report replaces out_dir/study/ as a whole, so that must be a report folder or nothing."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder. Pass a folder (default: reports).")
    target = out / study
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise ReportError(
            f"{target} is a file, and the report of {study!r} would replace it with a folder. "
            "Move or rename the file, or pass another --out."
        )
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ReportError(
            f"--out {out} cannot be written: {existing} is not a writable folder. Pass another --out."
        )


def replace_folder(folder: Path, write) -> None:  # noqa: ANN001 - write(staging_folder)
    """Write the whole report set into a staging folder, then swap it in: a failure leaves
    the previous report as it was, and never a mix of old and new files."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the report from other users
        old = None
        if folder.exists() or folder.is_symlink():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            folder.rename(old)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink()
