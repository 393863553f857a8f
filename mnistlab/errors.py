"""The one base class for failures a user can fix; the CLI shows these without a traceback."""


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
