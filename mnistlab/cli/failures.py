"""Expected failures as a user sees them: one paragraph naming the problem and the fix, and a
non-zero exit, never a traceback (a bug of mnistlab's own keeps its traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from mnistlab.cli.display import TRAIN_LR_FIX, console, labelled

# Errors raised inside these libraries come from the tracking store, not from mnistlab.
STORE_LIBRARIES = {"mlflow", "sqlalchemy", "sqlite3", "requests", "urllib3", "alembic"}

# What an interrupted command leaves behind, said as it is for each kind of command.
TRAINING_LEFT = "Finished runs are kept; a run in progress is marked KILLED."
READING_LEFT = "The store was only read; nothing in it changed."
DATA_LEFT = "No store was touched. Run the command again: the files are checked before use."
SYNC_LEFT = (
    "Runs already written are out of the spool; the rest stay in it. Run `mnistlab sync` "
    "again (writing a run twice changes nothing)."
)


@contextmanager
def user_errors(lr_fix: str = TRAIN_LR_FIX, left: str = TRAINING_LEFT) -> Iterator[None]:
    """Turn expected failures into one clear paragraph and a non-zero exit, no traceback.

    lr_fix: the advice for a run whose loss became NaN, naming where its command sets lr.
    left: what Ctrl-C or SIGTERM leaves behind (TRAINING_LEFT, READING_LEFT, DATA_LEFT, SYNC_LEFT).
    Exit status: 130 after Ctrl-C, 143 after SIGTERM, 1 for a diverged run, 2 otherwise.
    """
    from mnistlab.errors import MnistlabError, NonFiniteLossError, first_line
    from mnistlab.training.interrupts import Terminated, catch_interrupts, raise_if_swallowed

    catch_interrupts()
    try:
        yield
        raise_if_swallowed()  # a Ctrl-C Python ignored inside a finalizer still ends it here
    except KeyboardInterrupt as interrupt:
        console.print(
            labelled(
                "Terminated." if isinstance(interrupt, Terminated) else "Interrupted.",
                "yellow",
                left,
            )
        )
        raise typer.Exit(getattr(interrupt, "exit_code", 130)) from None
    except NonFiniteLossError as error:
        console.print(
            labelled(
                "Training diverged:",
                "red",
                f"{error}. The run is marked FAILED in MLflow. {lr_fix}",
            )
        )
        raise typer.Exit(1) from None
    except MnistlabError as error:
        console.print(labelled("Error:", "red", str(error)))
        raise typer.Exit(2) from None
    except Exception as error:
        if type(error).__module__.split(".")[0] not in STORE_LIBRARIES:
            raise  # a bug of mnistlab's own: the traceback is what a fix needs
        console.print(
            labelled(
                "Error:",
                "red",
                f"the tracking store failed ({type(error).__name__}: {first_line(error)}). "
                "Finished runs are kept; a run in progress is marked FAILED or, if the store "
                "could not be reached, spooled for `mnistlab sync`. Check that the store answers "
                "(`mlflow server` running, the SQLite file readable), then run the command again.",
            )
        )
        raise typer.Exit(2) from None
