"""The one base class for failures a user can fix; the CLI shows these without a traceback."""


class MnistlabError(Exception):
    """Bad input or an unusable environment; the message names the problem and the fix."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run cannot go on (it is marked FAILED).

    run_id: the tracked run it ended, once tracking has it (runner.tracked_train sets it).
    """

    run_id = ""
