"""The ranking's figure, in the style of a critical-difference diagram (Demsar 2006): the arms on
a mean-rank axis, best on the left, each labelled with its mean rank, and the arms that cannot
be told apart joined by a thick bar under the axis. The bars come from the pairwise exact tests
under one Holm family (stats.ranking.indistinct_groups), not from Nemenyi's critical
difference, so there is no CD ruler: a bar says "no pair among these is ranked apart".
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mnistlab.report.plots import LABEL_POINTS, WIDE, palette
from mnistlab.stats.ranking import Ranking

ROW = 0.32  # vertical step between label rows, in axis units
BAR_GAP = 0.12  # between the group bars under the axis


def cd_diagram(ranking: Ranking, spec_arms: list[str] | None = None) -> Figure:
    """The figure of a ranking: mean-rank axis 1..k (1 = best) and the groups as bars.

    spec_arms: the study's arms in the spec's order, so each arm keeps its colour
    (plots.palette) from the other figures."""
    arms, k = ranking.arms, len(ranking.arms)
    colours = palette([a for a in (spec_arms or arms) if a in arms])
    left = arms[: math.ceil(k / 2)]  # the better half is labelled on the left
    right = arms[math.ceil(k / 2) :]
    rows = max(len(left), len(right))
    bars = len(ranking.groups)
    figure, ax = plt.subplots(figsize=(WIDE[0], 1.1 + 0.3 * (rows + bars)))
    low, high = 1 - 0.35 * k, k + 0.35 * k  # room for the labels beside the axis
    ax.set_xlim(low, high)
    bottom = -(bars * BAR_GAP + (rows + 0.5) * ROW)
    ax.set_ylim(bottom, 0.35)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="0.2", lw=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.06], color="0.2", lw=1)
        ax.text(tick, 0.1, str(tick), ha="center", va="bottom", fontsize=LABEL_POINTS)
    ax.text((1 + k) / 2, 0.28, "mean rank (1 = best)", ha="center", fontsize=LABEL_POINTS)
    first_row = -(bars * BAR_GAP + ROW)
    for side, members in (("left", left), ("right", right)):
        ordered = members if side == "left" else list(reversed(members))
        for row, arm in enumerate(ordered):
            rank = ranking.mean_ranks[arm]
            y = first_row - row * ROW
            end = low + 0.1 * k if side == "left" else high - 0.1 * k
            ax.plot([rank, rank, end], [0, y, y], color=colours[arm], lw=1.2)
            ax.text(
                end - 0.05 if side == "left" else end + 0.05,
                y,
                f"{arm} ({rank:.2f})",
                ha="right" if side == "left" else "left",
                va="center",
                fontsize=LABEL_POINTS,
            )
    for index, group in enumerate(ranking.groups):
        ranks = [ranking.mean_ranks[arm] for arm in group]
        y = -(index + 1) * BAR_GAP
        ax.plot([min(ranks) - 0.05, max(ranks) + 0.05], [y, y], color="black", lw=3.5)
    figure.tight_layout()
    return figure
