"""Everything the commands show beyond one line of text: the console, progress bars, run lines,
warnings, and the tables of summaries, verdicts and power (rich, no torch)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from mnistlab import names
from mnistlab.errors import command_line
from mnistlab.report.links import experiment_page

# Wide enough that no message, path or table row is ever broken when output is not a terminal.
UNWRAPPED_WIDTH = 1_000_000


class PlainConsole(Console):
    """A rich console for mnistlab's own messages: strings are printed as text, never as
    markup (user paths and names hold brackets; styled parts are rich Text), and lines are
    laid out for a terminal only when there is one: in a file or a CI log a line is never
    broken, so a path copied from it is whole."""

    def __init__(self, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, markup=False)

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        return size if self.is_terminal else ConsoleDimensions(UNWRAPPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = PlainConsole(stderr=True)


def labelled(label: str, style: str, message: str) -> Text:
    """A styled label and a message that is shown as it is, whatever brackets it holds."""
    return Text.assemble((label, style), " ", message)


def training_progress() -> Progress:
    """The live bars of the run in progress, on a terminal only: piped to a file, rich's live
    display has nothing to redraw and would leave a blank line where the bars were."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}", markup=False),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def describe(outcome) -> Text:  # noqa: ANN001 - an executors.RunOutcome
    if outcome.claimed_by:
        return Text(f"{outcome.run.name}: left to {outcome.claimed_by}, which holds it")
    if outcome.failed:
        return Text.assemble(
            f"{outcome.run.name}: ",
            ("FAILED", "red"),
            f" ({outcome.failure}), run {outcome.run_id}",
        )
    return Text.assemble(
        f"{outcome.run.name}: test accuracy {outcome.test_accuracy:.4f}, "
        f"{outcome.train_seconds:.1f} s training, run {outcome.run_id}",
        *(
            [" ", ("DIVERGED", "yellow"), " (loss ended above its start)"]
            if outcome.diverged
            else []
        ),
    )


TRAIN_LR_FIX = "Try a smaller --lr."
STUDY_LR_FIX = "Try a smaller lr for that arm in the spec."  # study has no --lr option


def warn_diverged(name: str, fix: str = TRAIN_LR_FIX) -> None:
    from mnistlab.training.divergence import DIVERGENCE_RULE

    console.print(
        labelled(
            "Warning:",
            "yellow",
            f"{name} diverged ({DIVERGENCE_RULE}). It is FINISHED and tagged diverged=true in "
            f"MLflow; the report names it. {fix}",
        )
    )


class StudyDisplay:
    """Rich progress for a study: runs done with an ETA, and the current run's steps."""

    def __init__(self, progress: Progress, spec_name: str, steps_per_run: int) -> None:
        self.progress = progress
        self.spec_name = spec_name
        self.steps_per_run = steps_per_run
        self.overall = None
        self.current = None

    def planned(self, todo: int, skipped: int, busy: int = 0) -> None:
        console.print(
            Text.assemble(
                "Study ",
                (self.spec_name, "bold"),
                f": {todo + skipped + busy} runs, {skipped} already finished"
                + (f", {busy} being trained by another invocation" if busy else "")
                + (", nothing to train." if todo == 0 else f", training {todo}."),
            )
        )
        if todo:
            self.overall = self.progress.add_task("runs done", total=todo, loss=0.0, acc=0.0)

    def started(self, planned) -> None:  # noqa: ANN001 - a spec.run.PlannedRun
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.current = self.progress.add_task(
            planned.name, total=self.steps_per_run, loss=float("nan"), acc=0.0
        )

    def evaluated(self, point) -> None:  # noqa: ANN001
        if self.current is not None:
            self.progress.update(
                self.current, completed=point.step + 1, loss=point.train_loss, acc=point.accuracy
            )

    def warned(self, message: str) -> None:
        self.progress.console.print(labelled("Warning:", "yellow", message))

    def finished(self, outcome) -> None:  # noqa: ANN001
        self.progress.console.print(Text("  ") + describe(outcome))
        if outcome.diverged:
            warn_diverged(outcome.run.name, STUDY_LR_FIX)
        if self.overall is not None:
            self.progress.advance(self.overall)


def print_study_outcome(spec, spec_path: Path, report) -> bool:  # noqa: ANN001 - a StudySpec, a study.run.StudyReport
    """What a study did: dead runs marked, looks, runs left to others, failures, divergences.

    True when a run failed or diverged.
    """
    if report.orphaned:
        console.print(f"Marked {len(report.orphaned)} run(s) whose process had died as FAILED.")
    for number, summary in enumerate(report.looks, 1):
        console.print(f"Sequential look {number}: {summary}")
    failed = [o for o in report.outcomes if o.failed]
    trained = sum(o.trained for o in report.outcomes)
    if report.claimed:
        console.print(
            f"{len(report.claimed)} run(s) are being trained by another invocation right "
            f"now, and are left to it: {', '.join(report.claimed)}. Rerun this command once "
            "it ends to pick up any of them that failed."
        )
    typer.echo(
        f"Study {spec.name}: {report.planned} runs, {report.skipped} skipped as finished, "
        f"{trained} trained"
        + (f", {len(report.claimed)} left to another invocation" if report.claimed else "")
        + (f", {len(failed)} FAILED" if failed else "")
        + f". Analyse with: {command_line('report', spec.name)}"
    )
    if failed:
        console.print(
            labelled(
                f"{len(failed)} run(s) failed",
                "red",
                "and are marked FAILED in MLflow: "
                + "; ".join(f"{o.run.name} (run {o.run_id}: {o.failure})" for o in failed)
                + f". The other runs are kept. Rerunning `{command_line('study', spec_path)}` "
                "retrains only the failed ones; if they diverge again, lower that arm's lr.",
            )
        )
    diverged = [o for o in report.outcomes if o.trained and o.diverged]
    if diverged:
        from mnistlab.training.divergence import DIVERGENCE_RULE

        console.print(
            labelled(
                f"{len(diverged)} run(s) diverged",
                "yellow",
                f"({DIVERGENCE_RULE}): "
                + "; ".join(f"{o.run.name} (run {o.run_id})" for o in diverged)
                + ". They are FINISHED and tagged diverged=true: real results of their arm, "
                "which the report names. Training them again would repeat them bit for bit; "
                "lower that arm's lr in the spec to train a new arm instead.",
            )
        )
    return bool(failed or diverged)


def print_summary(results) -> None:  # noqa: ANN001 - a results.StudyResults
    """Per-arm means of the main measures, as plain text."""
    columns = [
        "arm",
        "runs",
        names.TEST_ACCURACY + names.MEAN_SUFFIX,
        names.EPOCH_TRAIN_SECONDS + names.MEAN_SUFFIX,
        names.LOG_LOSS_SPREAD + names.MEAN_SUFFIX,
    ]
    if not results.summary.empty:
        typer.echo(f"{results.study} on {results.dataset_title}")
        import pandas as pd

        # Columns line up under names in any script: CJK characters take two columns.
        with pd.option_context("display.unicode.east_asian_width", True):
            table = results.summary[columns].to_string(index=False, float_format="%.4f")
        typer.echo(table)
    for arm, words in results.differences.items():  # what each comparison is about
        typer.echo(f"{arm} against {results.baseline}: {words}")


# Terminal colour per verdict tone (stats.verdicts.TONES): every verdict has a tone.
TONE_COLOURS = {
    "supported": "green",
    "contradicted": "red",
    "inconclusive": "yellow",
    "equivalent": "cyan",
}


def print_verdicts(results) -> None:  # noqa: ANN001 - a results.StudyResults
    from rich.table import Table

    from mnistlab.report.tables import verdict_rows

    out = PlainConsole()
    rows = verdict_rows(results)
    margins = any(row["equivalence"] for row in rows)
    for variant in dict.fromkeys(row["variant"] for row in rows):
        table = Table(
            title=f"Study {results.study}: {variant} against {results.baseline}", show_lines=True
        )
        for column in ("claim", "n", "estimate", "CI (its level)", "p (Holm)", "verdict"):
            table.add_column(column)
        if margins:
            table.add_column("equivalence (margin, TOST p, 1 − 2α CI)")
        for row in (r for r in rows if r["variant"] == variant):
            table.add_row(
                row["statement"],
                row["n"],
                row["estimate"],
                row["interval"],
                row["p_holm"],
                Text(row["verdict"], style=TONE_COLOURS[row["tone"]]),
                *([row["equivalence"] or "–"] if margins else []),
            )
        out.print(table)
    if rows:
        out.print(
            f"Holm's correction over {results.family_size} test(s) "
            f"({len(results.spec.claims)} claim(s) x {len(results.variants)} variant(s)); "
            f"a verdict needs at least {results.min_seeds} paired seeds."
        )
    for note in results.notes:
        out.print(labelled("Note:", "yellow", note))


def seeds_text(seeds) -> str:  # noqa: ANN001 - a count, or None/NaN: more than the grid
    """A planned number of seeds, or '> 60' when the grid's largest count is not enough."""
    from mnistlab.stats.power import SEED_GRID

    return str(int(seeds)) if seeds is not None and seeds == seeds else f"> {SEED_GRID[-1]}"


def seeds_needed_text(row) -> str:  # noqa: ANN001 - a row of power_analysis's table
    """The seeds needed at the observed effect with the range the pilot's error allows, or why
    the pilot cannot size the study."""
    if row.n < 2:
        return "–"
    if not row.sizable:
        return "none: the pilot shows no effect (see the note)"
    return (
        f"{seeds_text(row.seeds_needed)} (the pilot's error allows "
        f"{seeds_text(row.seeds_needed_low)} to {seeds_text(row.seeds_needed_high)})"
    )


def print_power(results, table) -> None:  # noqa: ANN001 - a results.StudyResults, power_analysis's table
    """Per claim: power now, seeds needed for 80% power, the effect the current n detects, and
    the seeds for a named effect where one was asked for; then how each column was computed."""
    out = PlainConsole()
    out.print(power_grid(results.study, table))
    for line in power_legend(results, sized=table["effect"].notna().any()):
        out.print(line)
    for note in dict.fromkeys(n for n in table["note"] if n):
        out.print(labelled("Note:", "yellow", note))


def power_grid(study: str, table) -> Table:  # noqa: ANN001 - power_analysis's table
    """The power table: one row per variant and claim."""
    from mnistlab.stats.power import TARGET_POWER

    grid = Table(title=f"Study {study}: seeds needed for {TARGET_POWER:.0%} power", show_lines=True)
    sized = table["effect"].notna().any()
    for column in ("claim", "n", "observed", "power now", "seeds needed", "detectable now"):
        grid.add_column(column)
    if sized:
        grid.add_column("seeds for the effect")
    for row in table.itertuples():
        unit = "x" if row.estimate_kind == "ratio" else ""
        grid.add_row(
            f"{row.variant}: {row.claim}",
            str(row.n),
            f"{row.observed:.4g}{unit}",
            f"{row.power_now:.0%} ± {row.power_now_se:.1%}"
            if row.power_now == row.power_now
            else "–",
            seeds_needed_text(row),
            f"{row.detectable:.4g}{unit}"
            if row.detectable == row.detectable
            else row.detectable_note,
            *([seeds_for_effect_text(row, unit)] if sized else []),
        )
    return grid


def seeds_for_effect_text(row, unit: str) -> str:  # noqa: ANN001 - a power table row
    if row.effect != row.effect:
        return "–"
    return (
        f"{seeds_text(row.seeds_for_effect)} (at {row.effect:g}{unit}; the pilot's error "
        f"allows {seeds_text(row.seeds_for_effect_low)} to "
        f"{seeds_text(row.seeds_for_effect_high)})"
    )


def power_legend(results, sized: bool) -> list[str]:  # noqa: ANN001 - a results.StudyResults
    """How each column of the power table was computed, in words."""
    from mnistlab.spec.measures import SAME
    from mnistlab.stats.planning import EFFECT_LEVEL
    from mnistlab.stats.power import TARGET_POWER

    lines = []
    if any(c.direction == SAME and c.margin is not None for c in results.spec.claims):
        lines.append(
            "An equivalence claim's power and seeds are its two one-sided tests': the chance to "
            "show the difference within its margin when the true difference is 0 (or its effect)."
        )
    lines.append(
        f"Seeds needed: for {TARGET_POWER:.0%} power at the observed effect, planned at the "
        f"lower {EFFECT_LEVEL:.0%} confidence bound of its standardized size d_z (noncentral t; "
        "a safeguard power analysis, Perugini et al. 2014), so that a study sized from a noisy "
        "pilot still reaches the power: the pilot's mean and SD are both estimates; the range: "
        "the plans at d_z's 10% and 90% bounds."
    )
    if sized:
        lines.append(
            "Seeds for the effect: planned with the spread at its 80% upper confidence bound, "
            "so that a study sized from a noisy pilot still reaches the power (the pilot's SD "
            "is itself an estimate); the range: the plans at its 10% and 90% bounds."
        )
    lines.append(
        f"Power: the chance that a study of that many seeds decides the claim the way the "
        f"observed effect points, with the study's exact tests and Holm over its "
        f"{results.family_size} test(s), from resampled seeds, ± its Monte Carlo standard "
        "error; a count is enough only when its power clears 80% beyond that error. "
        "Detectable now: the smallest effect this n finds with 80% power."
    )
    return lines


def experiment_link(tracking_uri: str, experiment_id: str, study: bool = False) -> str:
    """Where the MLflow UI shows the experiment's runs (its Model training view, not GenAI);
    for a study, grouped by arm (report.links.experiment_page)."""
    page = experiment_page(experiment_id, study)
    if tracking_uri.startswith(("http://", "https://")):
        return f"In the MLflow UI: {tracking_uri.rstrip('/')}/{page}"
    return f"With `make ui`: http://127.0.0.1:5000/{page}"
