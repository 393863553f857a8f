"""`mnistlab analyze`'s ranking: the arms by mean rank and every pair, as rich tables."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from mnistlab.cli.display import TONE_COLOURS, PlainConsole, labelled
from mnistlab.report.ranking import arm_rows, heading, pair_rows, summary_lines
from mnistlab.stats.ranking import Ranking


def print_ranking(ranking: Ranking | None, gap: str = "") -> None:
    """The ranking's two tables and the sentences under them; gap: why an asked-for ranking is
    missing (printed as a note), '' when none was asked for."""
    out = PlainConsole()
    if ranking is None:
        if gap:
            out.print(labelled("Note:", "yellow", gap))
        return
    arms = Table(title=heading(ranking), show_lines=True)
    for column in ("#", "arm", "mean rank", "not told apart from"):
        arms.add_column(column)
    for row in arm_rows(ranking):
        arms.add_row(row["position"], row["arm"], row["mean_rank"], row["not_apart_from"])
    out.print(arms)
    pairs = Table(title="Every pair, under one Holm family", show_lines=True)
    for column in ("pair", "n", "estimate", "CI", "p (Holm)", "beats on", "verdict"):
        pairs.add_column(column)
    for row in pair_rows(ranking):
        pairs.add_row(
            row["pair"],
            row["n"],
            row["estimate"],
            row["interval"],
            row["p_holm"],
            row["beats"],
            Text(row["verdict"], style=TONE_COLOURS[row["tone"]]),
        )
    out.print(pairs)
    for line in summary_lines(ranking):
        out.print(line)
