"""The one base class for failures a user can fix (the CLI shows these without a traceback),
and the way messages spell the command that fixes a problem."""

import shlex


class MnistlabError(Exception):
    """Bad input or an unusable environment; the message names the problem and the fix."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run cannot go on (it is marked FAILED).

    run_id: the tracked run it ended, once tracking has it (runner.tracked_train sets it).
    """

    run_id = ""


def first_line(error: BaseException | None, limit: int = 300) -> str:
    """An error's first line, cut to limit characters, or its type's name when it says nothing:
    library errors carry pages of SQL or HTML that belong in no one-paragraph message."""
    text = str(error) if error is not None else ""
    return text.splitlines()[0][:limit] if text.strip() else type(error).__name__


def command_line(*words: object) -> str:
    """`mnistlab WORD ...` as a user can paste it into a shell: each word quoted where it needs
    to be (a path or name with spaces, brackets or quotes), e.g. command_line("study",
    "my specs/a.toml") -> "mnistlab study 'my specs/a.toml'"."""
    return " ".join(["mnistlab", *(shlex.quote(str(w)) for w in words)])
