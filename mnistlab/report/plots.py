"""Figures from tidy frames and statistics: one look, readable in print.

Every function returns a matplotlib Figure and draws nothing else; the report embeds them.
"""

from __future__ import annotations

import io
import re
import warnings

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, never a window


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mnistlab import names  # noqa: E402
from mnistlab.report.fonts import font_chain  # noqa: E402
from mnistlab.results.features import metric_series, trend_window  # noqa: E402

WIDE = (7.0, 3.2)
LABEL_POINTS = 8  # the smallest text in a figure: legible printed and on a phone
SQUARE = (3.4, 3.2)
DPI = 200  # sharp on a phone's screen when a figure is zoomed
# Characters a figure could not draw with any installed font (from matplotlib's warnings).
missing_glyphs: set[str] = set()


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.05)
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "font.family": font_chain(),
            "legend.fontsize": 8,
        }
    )


def palette(arms: list[str]) -> dict[str, tuple]:
    """One colour per arm, in the spec's order: the same arm has the same colour everywhere."""
    return dict(zip(arms, sns.color_palette("colorblind", len(arms)), strict=True))


GLYPH_WARNING = re.compile(r"Glyph \d+ \((.+?)\) missing from font")


def to_png(figure: Figure) -> bytes:
    """The figure as PNG; characters no installed font could draw are kept in missing_glyphs
    (the report says so once) instead of a warning per character."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.savefig(buffer, format="png", dpi=DPI)
    for warning in caught:
        found = GLYPH_WARNING.search(str(warning.message))
        if found:
            missing_glyphs.add(found.group(1))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    plt.close(figure)
    return buffer.getvalue()


def _with_arms(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    return series.merge(runs[["run_id", "arm", "seed"]], on="run_id")


def mean_band(rows: pd.DataFrame, column: str, band: str, boots: int = 500) -> pd.DataFrame:
    """Per step: the mean over seeds and a band, 'sd' (mean +- SD) or 'ci' (95% bootstrap).

    The bootstrap resamples seeds, all steps at once, seeded: the same figure every time.
    Computed here in one vectorised pass (seaborn's per-step loop took seconds per figure).
    """
    table = rows.pivot_table(index="seed", columns="step", values=column, aggfunc="mean")
    values = table.to_numpy(dtype=float)
    mean = np.nanmean(values, axis=0)
    if band == "sd":
        spread = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
        low, high = mean - spread, mean + spread
    else:
        picks = np.random.default_rng(0).integers(0, len(values), size=(boots, len(values)))
        means = np.nanmean(values[picks], axis=1)  # (boots, steps)
        low, high = np.nanpercentile(means, [2.5, 97.5], axis=0)
    return pd.DataFrame({"step": table.columns, "mean": mean, "low": low, "high": high})


def draw_band(ax, band: pd.DataFrame, colour, label: str) -> None:  # noqa: ANN001
    ax.plot(band["step"], band["mean"], color=colour, label=label, lw=1.5)
    ax.fill_between(band["step"], band["low"], band["high"], color=colour, alpha=0.2, lw=0)


def accuracy_curves(history: pd.DataFrame, runs: pd.DataFrame, arms: list[str]) -> Figure:
    """Evaluation accuracy against step: mean with 95% band, each seed faint."""
    evals = _with_arms(metric_series(history, names.EVAL_ACCURACY), runs)
    figure, axes = plt.subplots(1, 2, figsize=WIDE, sharey=False)
    colours = palette(arms)
    bands = {arm: mean_band(evals[evals["arm"] == arm], "value", "ci") for arm in arms}
    for ax, zoom in zip(axes, (False, True), strict=True):
        for (arm, _), run in evals.groupby(["arm", "seed"], sort=False):
            ax.plot(run["step"], run["value"], color=colours[arm], alpha=0.18, lw=0.6)
        for arm in arms:
            draw_band(ax, bands[arm], colours[arm], arm)
        ax.set(xlabel="step", ylabel="accuracy (evaluation subset)")
        if zoom:
            late = evals[evals["step"] >= evals["step"].max() / 2]["value"]
            ax.set(
                xlim=(evals["step"].max() / 2, None),
                ylim=(max(0.0, late.min() - 0.005), min(1.0, late.max() + 0.005)),
            )
            ax.set_title("second half, zoomed")
    axes[0].set_title("all steps")
    _legend_below(figure, axes[0], "arm")
    return figure


def _legend_below(figure: Figure, ax, title: str | None = None) -> None:  # noqa: ANN001
    """One legend under the axes, outside them: it never covers a curve."""
    handles, labels = ax.get_legend_handles_labels()
    figure.tight_layout()
    if handles:
        figure.legend(
            handles,
            labels,
            title=title,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(len(labels), 4),
            frameon=False,
        )


def loss_curves(history: pd.DataFrame, runs: pd.DataFrame, arms: list[str]) -> Figure:
    """Train loss against step: each run's rolling median, mean over seeds with SD band."""
    losses = _with_arms(metric_series(history, names.TRAIN_LOSS), runs)
    window = trend_window(losses.groupby("run_id").size().min())
    losses["smoothed"] = losses.groupby("run_id")["value"].transform(
        lambda v: v.rolling(window, center=True, min_periods=1).median()
    )
    figure, ax = plt.subplots(figsize=WIDE)
    colours = palette(arms)
    for arm in arms:
        draw_band(ax, mean_band(losses[losses["arm"] == arm], "smoothed", "sd"), colours[arm], arm)
    ax.set(yscale="log", xlabel="step", ylabel=f"train loss (rolling median of {window})")
    _legend_below(figure, ax, "arm")
    return figure


def reached_curves(fractions: pd.DataFrame, arms: list[str]) -> Figure:
    """Fraction of seeds that have reached each threshold, against the step."""
    thresholds = sorted(fractions["threshold"].unique())
    figure, axes = plt.subplots(
        1, len(thresholds), figsize=(WIDE[0], 2.6), sharey=True, squeeze=False
    )
    colours = palette(arms)
    for ax, threshold in zip(axes[0], thresholds, strict=True):
        for arm in arms:
            rows = fractions[(fractions["threshold"] == threshold) & (fractions["arm"] == arm)]
            ax.step(rows["step"], rows["fraction"], where="post", color=colours[arm], label=arm)
        ax.set(title=f"accuracy ≥ {threshold:g}", xlabel="step", ylim=(-0.03, 1.03))
    axes[0][0].set_ylabel("fraction of seeds")
    _legend_below(figure, axes[0][0], "arm")
    return figure


def tie_offsets(values: pd.Series, step: float = 0.07) -> pd.Series:
    """Horizontal offsets that spread equal values side by side (ties stay visible)."""
    offsets = pd.Series(0.0, index=values.index)
    for _, group in values.groupby(values.round(12), sort=False):
        count = len(group)
        if count > 1:
            width = min(step, 0.6 / count)
            offsets[group.index] = (np.arange(count) - (count - 1) / 2) * width
    return offsets


def paired_lines(
    table: pd.DataFrame,
    column: str,
    arms: list[str],
    ylabel: str,
    reached_column: str | None = None,
) -> Figure:
    """One value per seed and arm, with a grey line joining each seed's values across the arms.

    Seeds with equal values in an arm are spread side by side (with their count), so ties
    stay visible. Censored values (reached_column False) are drawn as open markers.
    """
    figure, ax = plt.subplots(figsize=SQUARE)
    rows = table[table["arm"].isin(arms)].drop_duplicates(["seed", "arm"], keep="last")
    present = [arm for arm in arms if arm in set(rows["arm"])]
    position = {arm: float(i) for i, arm in enumerate(present)}
    rows = rows.assign(x=rows["arm"].map(position))
    for arm in present:
        mine = rows["arm"] == arm
        rows.loc[mine, "x"] += tie_offsets(rows.loc[mine, column])
    for _, seed_rows in rows.groupby("seed"):
        seed_rows = seed_rows.sort_values("x")
        ax.plot(seed_rows["x"], seed_rows[column], color="0.6", lw=0.8, zorder=1)
    colours = palette(arms)
    censored_label = False
    for arm in present:
        mine = rows[rows["arm"] == arm]
        reached = (
            mine[reached_column].astype(bool) if reached_column else pd.Series(True, mine.index)
        )
        ax.scatter(
            mine.loc[reached, "x"], mine.loc[reached, column], color=colours[arm], zorder=2, s=22
        )
        if (~reached).any():
            ax.scatter(
                mine.loc[~reached, "x"],
                mine.loc[~reached, column],
                facecolors="white",
                edgecolors=colours[arm],
                zorder=2,
                s=22,
                label=None if censored_label else "not reached (censored)",
            )
            censored_label = True
        for value, group in mine.groupby(mine[column].round(12)):
            if len(group) > 1:
                ax.annotate(
                    f"×{len(group)}",
                    (group["x"].max(), value),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=LABEL_POINTS,
                    color="0.3",
                )
    ax.set_xticks(range(len(present)), present)
    ax.set(xlim=(-0.5, len(present) - 0.5), ylabel=ylabel)
    _legend_below(figure, ax)
    return figure


VERDICT_COLOURS = {
    "supported": "#106b21",
    "contradicted": "#a11111",
    "equivalent": "#1a4f8a",
    "inconclusive": "#8a6100",
}


def ratio_axis(ax: Axes) -> None:
    """A log x axis labelled in ratios ('0.8×', '1×', '1.25×'): 0.8× and 1.25× lie as far
    from 1× either way, as they are far from equal; ticks at round ratios, no log-style
    minor labels."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in matplotlib.ticker.MaxNLocator(6).tick_values(low, high) if t > 0]
    if low < 1 < high:  # the null gets its label; ticks that would crowd it give way
        room = 0.1 * np.log(high / low)
        ticks = [t for t in ticks if abs(np.log(t)) >= room] + [1.0]
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(sorted(ticks)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda t, _: f"{t:.3g}×"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(low, high)


def forest(rows: list[dict]) -> Figure:
    """The verdicts at a glance: per claim a panel, per variant a row with the estimate and its
    interval, the null line (0 for differences, 1 for ratios) and any margin;
    coloured by verdict. Ratios on a log axis (ratio_axis), where an interval that inverts a
    test on log ratios is drawn as it was computed.

    rows: dicts with claim, variant, kind ('ratio' or 'difference'), estimate, low, high,
    margin (nan without one), tone and verdict.
    """
    claims = list(dict.fromkeys(r["claim"] for r in rows))
    heights = [max(1, sum(r["claim"] == c for r in rows)) for c in claims]
    figure, axes = plt.subplots(
        len(claims),
        1,
        figsize=(WIDE[0], 0.75 + sum(0.42 * h + 0.55 for h in heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, claim in zip(axes[:, 0], claims, strict=True):
        mine = [r for r in rows if r["claim"] == claim]
        ratio = mine[0]["kind"] == "ratio"
        null = 1.0 if ratio else 0.0
        ax.axvline(null, color="0.25", lw=1, zorder=1)
        margin = mine[0].get("margin", float("nan"))
        if margin is not None and np.isfinite(margin):
            for edge in (1 / margin, margin) if ratio else (-margin, margin):
                ax.axvline(edge, color="0.5", ls="--", lw=0.8, zorder=1)
        for y, row in enumerate(mine):
            colour = VERDICT_COLOURS.get(row["tone"], "0.3")
            low, high = row["low"], row["high"]
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [y, y], color=colour, lw=2.2, solid_capstyle="butt", zorder=2)
            if np.isfinite(row["estimate"]):
                ax.plot(row["estimate"], y, "o", color=colour, ms=6, zorder=3)
            ax.annotate(
                row["verdict"],
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=LABEL_POINTS,
                color=colour,
                fontweight="bold",
            )
        if ratio:
            ratio_axis(ax)
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
        ax.set_yticks(range(len(mine)), [r["variant"] for r in mine])
        ax.set_ylim(len(mine) - 0.5, -0.5)
        ax.set_title(claim, loc="left", fontsize=9)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("ratio variant / baseline" if ratio else "difference variant − baseline")
    figure.tight_layout()
    return figure


def digit_grid(
    images: np.ndarray,
    captions: list[str],
    wrong: list[bool],
    columns: int = 10,
    cell: tuple[float, float] = (0.75, 0.95),
) -> Figure:
    """Digits (n, 28, 28) in a grid, each with a caption; wrong predictions captioned in red.

    Each digit's axes are placed by hand (caption above, image below, in a fixed cell):
    tight_layout over 40 captioned axes took a second per figure.
    """
    rows = max(1, int(np.ceil(len(images) / columns)))
    width, height = columns * cell[0], rows * cell[1]
    figure = plt.figure(figsize=(width, height))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    caption = lines * LABEL_POINTS * 1.25 / 72  # inches: the text's points, 1.25 line spacing
    side = max(0.1, min(cell[0], cell[1] - caption) * 0.9)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        left = column * cell[0] + (cell[0] - side) / 2
        bottom = height - (row + 1) * cell[1] + 0.04
        ax = figure.add_axes((left / width, bottom / height, side / width, side / height))
        ax.axis("off")
        ax.imshow(image, cmap="gray_r", interpolation="nearest")
        ax.set_title(
            captions[index], fontsize=LABEL_POINTS, color="red" if wrong[index] else "black", pad=2
        )
    return figure


def power_curves(curves: pd.DataFrame, seeds_now: int, target: float) -> Figure:
    """Power against seeds, one line per (variant, claim); the target and today's n marked."""
    figure, ax = plt.subplots(figsize=WIDE)
    for (variant, claim), rows in curves.groupby(["variant", "claim"], sort=False):
        ax.plot(rows["seeds"], rows["power"], marker=".", label=f"{variant}: {claim}")
    ax.axhline(target, color="0.4", ls="--", lw=0.8)
    ax.axvline(seeds_now, color="0.6", ls=":", lw=0.8)
    ax.set(xlabel="paired seeds", ylabel="power (Holm family)", ylim=(-0.02, 1.02))
    _legend_below(figure, ax)
    return figure
