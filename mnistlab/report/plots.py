"""Figures from tidy frames and statistics: one look, readable in print.

Every function returns a matplotlib Figure and draws nothing else; the report embeds them.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mnistlab import names  # noqa: E402
from mnistlab.stats.analysis import metric_series, trend_window  # noqa: E402

WIDE = (7.0, 3.2)
SQUARE = (3.4, 3.2)


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.05)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def palette(arms: list[str]) -> dict[str, tuple]:
    """One colour per arm, in the spec's order: the same arm has the same colour everywhere."""
    return dict(zip(arms, sns.color_palette("colorblind", len(arms)), strict=True))


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
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
        if not zoom:
            ax.legend(title="arm")
        ax.set(xlabel="step", ylabel="accuracy (evaluation subset)")
        if zoom:
            late = evals[evals["step"] >= evals["step"].max() / 2]["value"]
            ax.set(
                xlim=(evals["step"].max() / 2, None),
                ylim=(max(0.0, late.min() - 0.005), min(1.0, late.max() + 0.005)),
            )
            ax.set_title("second half, zoomed")
    axes[0].set_title("all steps")
    figure.tight_layout()
    return figure


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
    ax.legend(title="arm")
    ax.set(yscale="log", xlabel="step", ylabel=f"train loss (rolling median of {window})")
    figure.tight_layout()
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
    axes[0][-1].legend(loc="lower right", frameon=True)
    figure.tight_layout()
    return figure


def paired_lines(
    table: pd.DataFrame,
    column: str,
    arms: list[str],
    ylabel: str,
    reached_column: str | None = None,
) -> Figure:
    """One value per seed and arm, with a grey line joining each seed's values across the arms.

    Censored values (reached_column False) are drawn as open markers.
    """
    figure, ax = plt.subplots(figsize=SQUARE)
    wide = table.pivot_table(index="seed", columns="arm", values=column, aggfunc="last")
    present = [arm for arm in arms if arm in wide]
    for _, row in wide[present].iterrows():
        ax.plot(range(len(present)), row.to_numpy(), color="0.6", lw=0.8, zorder=1)
    colours = palette(arms)
    for position, arm in enumerate(present):
        rows = table[table["arm"] == arm]
        reached = (
            rows[reached_column].astype(bool) if reached_column else pd.Series(True, rows.index)
        )
        ax.scatter(
            np.full(int(reached.sum()), float(position)),
            rows.loc[reached, column],
            color=colours[arm],
            zorder=2,
            s=22,
        )
        if (~reached).any():
            ax.scatter(
                np.full(int((~reached).sum()), float(position)),
                rows.loc[~reached, column],
                facecolors="white",
                edgecolors=colours[arm],
                zorder=2,
                s=22,
                label="not reached (censored)",
            )
            ax.legend(loc="best", fontsize="small")
    ax.set_xticks(range(len(present)), present)
    ax.set(xlim=(-0.4, len(present) - 0.6), ylabel=ylabel)
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
    caption = lines * 7 * 1.25 / 72  # inches: 7-point text, 1.25 line spacing
    side = max(0.1, min(cell[0], cell[1] - caption) * 0.9)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        left = column * cell[0] + (cell[0] - side) / 2
        bottom = height - (row + 1) * cell[1] + 0.04
        ax = figure.add_axes((left / width, bottom / height, side / width, side / height))
        ax.axis("off")
        ax.imshow(image, cmap="gray_r", interpolation="nearest")
        ax.set_title(captions[index], fontsize=7, color="red" if wrong[index] else "black", pad=2)
    return figure


def power_curves(curves: pd.DataFrame, seeds_now: int, target: float) -> Figure:
    """Power against seeds, one line per (variant, claim); the target and today's n marked."""
    figure, ax = plt.subplots(figsize=WIDE)
    for (variant, claim), rows in curves.groupby(["variant", "claim"], sort=False):
        ax.plot(rows["seeds"], rows["power"], marker=".", label=f"{variant}: {claim}")
    ax.axhline(target, color="0.4", ls="--", lw=0.8)
    ax.axvline(seeds_now, color="0.6", ls=":", lw=0.8)
    ax.set(xlabel="paired seeds", ylabel="power (Holm family)", ylim=(-0.02, 1.02))
    ax.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return figure
