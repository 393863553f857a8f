"""The limits a study's names and stored spec meet, checked when a spec is read: the
characters of a name, MLflow's key and tag lengths, the file system's folder names."""

from __future__ import annotations

from typing import Any

MAX_RECORD_CHARACTERS = 20_000  # an MLflow tag value's limit; the record is one tag
# The limits a name meets: MLflow's on a key (mlflow.utils.validation; a test keeps them
# equal), and the file system's on one path component, in bytes. A study's name is a folder
# (reports/NAME/, mlartifacts/NAME/), and reports/.NAME.old-PID the swap's: room is kept for it.
MLFLOW_KEY_LIMIT = 250
FOLDER_NAME_BYTES = 255
FOLDER_SUFFIX_BYTES = 20
_NAME_CHARACTERS = "-_."


def valid_name(name: Any) -> bool:
    """A safe single path component: letters, digits, - _ or ., and not just dots."""
    return (
        isinstance(name, str)
        and bool(name)
        and all(c.isalnum() or c in _NAME_CHARACTERS for c in name)
        and name.strip(".") != ""  # "." and ".." would name folders outside reports/
    )


_SPOKEN = {" ": "a space", "\t": "a tab", "\n": "a line break", "/": "'/'", "\\": "'\\'"}


def name_problem(name: Any) -> str | None:
    """Why name is not a valid_name, naming each character it cannot hold and a name that
    would do (those characters as '-'), or None. E.g. for "my arm": "'my arm' holds a space,
    which a name cannot hold: ... (e.g. 'my-arm')."."""
    if valid_name(name):
        return None
    if not isinstance(name, str) or not name:
        return "must be a name of letters, digits, - _ or . (it is empty or not text)."
    bad = [c for c in dict.fromkeys(name) if not (c.isalnum() or c in _NAME_CHARACTERS)]
    if not bad:
        return f"{name!r} is only dots, which would name a folder outside reports/; add a letter."
    shown = ", ".join(_SPOKEN.get(c, f"{c!r} (U+{ord(c):04X})") for c in bad)
    fixed = "".join("-" if c in bad else c for c in name).strip("-") or "study"
    return (
        f"{name!r} holds {shown}, which a name cannot hold: names become MLflow keys and "
        f"folder names, so they are letters (any script), digits, - _ or . (e.g. {fixed!r})."
    )


def folder_name_problem(name: str) -> str | None:
    """Why name cannot name a folder mnistlab makes (too many bytes), or None."""
    size, limit = len(name.encode()), FOLDER_NAME_BYTES - FOLDER_SUFFIX_BYTES
    if size <= limit:
        return None
    return (
        f"is {size} bytes in UTF-8 ({len(name)} characters), and it names folders "
        f"(reports/NAME/, mlartifacts/NAME/) whose names the file system limits to "
        f"{FOLDER_NAME_BYTES} bytes, {limit} once mnistlab's suffixes are added. Shorten it "
        f"to at most {limit} bytes."
    )
