"""Process-wide signal handling: SIGTERM ends the current run the way Ctrl-C does."""

from __future__ import annotations

import signal


def _raise_interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C: the current run ends KILLED and finished runs stay."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
