"""Process-wide signal handling: SIGTERM ends the current run the way Ctrl-C does."""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the run in progress ends KILLED, finished runs stay), but
    the command exits with 143 (128 + 15), the status shells and schedulers expect of a process
    ended by SIGTERM, where Ctrl-C gives 130."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum, frame) -> None:  # noqa: ANN001
    raise Terminated


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C: the current run ends KILLED and finished runs stay."""
    signal.signal(signal.SIGTERM, _raise_terminated)
