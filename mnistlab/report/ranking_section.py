"""The report's Ranking section: its text (report.ranking), its figure (report.ranking_plot)
and its place in the table of contents, for templates/ranking.html.j2."""

from __future__ import annotations

from mnistlab.report import plots
from mnistlab.report.ranking import arm_rows, heading, pair_rows, summary_lines
from mnistlab.report.ranking_plot import cd_diagram
from mnistlab.stats.ranking import Ranking

ENTRY = ("ranking", "Ranking")
AFTER = "verdicts"  # the section is part of the verdicts'


def ranking_context(ranking: Ranking, spec_arms: list[str]) -> dict:
    """What the template shows: heading, the figure, the arm and pair rows, the sentences."""
    from mnistlab.report.render import Figure  # render imports this module lazily

    plots.set_style()
    figure = Figure(
        "ranking-figure",
        "Which arm is best",
        "Each arm at its mean rank over the seeds (1 = best, on the left). A thick bar joins "
        "arms no two of which are ranked apart by the pairwise exact tests under one Holm "
        "family; arms not joined by a bar are told apart. As a critical-difference diagram, "
        "but with the study's exact paired tests in place of Nemenyi's critical difference.",
        plots.to_png(cd_diagram(ranking, spec_arms)),
    )
    return {
        "heading": heading(ranking),
        "alpha": f"{ranking.alpha:g}",
        "figure": figure,
        "arms": arm_rows(ranking),
        "pairs": pair_rows(ranking),
        "lines": summary_lines(ranking),
    }


def with_ranking(toc: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The table of contents with the Ranking entry after the verdicts."""
    at = next(i for i, (slug, _) in enumerate(toc) if slug == AFTER) + 1
    return [*toc[:at], ENTRY, *toc[at:]]
