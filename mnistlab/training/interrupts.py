"""Process-wide signal handling: SIGTERM ends the current run the way Ctrl-C does, and an
interrupt that Python swallowed still ends the command."""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the run in progress ends KILLED, finished runs stay), but
    the command exits with 143 (128 + 15), the status shells and schedulers expect of a process
    ended by SIGTERM, where Ctrl-C gives 130."""

    exit_code = 128 + signal.SIGTERM


# The interrupt last raised by a handler below. Python ignores an exception raised inside a
# finalizer or weakref callback (it prints "Exception ignored in ..."), so a Ctrl-C that lands
# there would otherwise be lost and the command would go on and exit 0.
_raised: list[type[KeyboardInterrupt]] = []


def _raise_interrupt(signum, frame) -> None:  # noqa: ANN001
    interrupt = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    _raised.append(interrupt)
    raise interrupt


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C: the current run ends KILLED and finished runs stay."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def catch_interrupts() -> None:
    """SIGTERM as Ctrl-C (stop_on_sigterm), and both remembered for raise_if_swallowed."""
    _raised.clear()
    stop_on_sigterm()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)


def raise_if_swallowed() -> None:
    """Raise again an interrupt that a handler raised but that never reached the command
    (swallowed inside a finalizer); a no-op when there was none. Call where the command ends."""
    if _raised:
        raise _raised[-1]
