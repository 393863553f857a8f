"""The report's figures, each with its title and caption: the verdicts at a glance (forest),
the curves during training, one per claim paired by seed, and the demo of predictions. Drawn
by report.plots; here what each shows and says."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from mnistlab import names
from mnistlab.report import fonts, plots
from mnistlab.report.demo import Demo
from mnistlab.report.sections import eval_subset_text
from mnistlab.report.tables import verdict_rows
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import Measure, measure
from mnistlab.training.dataset_registry import dataset_info
from mnistlab.training.owndata import display_images

MAX_MISCLASSIFIED = 40


@dataclass
class Figure:
    slug: str
    title: str
    caption: str
    png: bytes
    narrow: bool = False  # one value per seed and arm: a square figure

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def claim_caption(measure: Measure, results: StudyResults) -> str:
    paired = "grey lines join the arms trained on the same seed (same batches)"
    if measure.name.startswith(names.STEPS_TO + ":"):
        return (
            f"First evaluation step at which accuracy reached {measure.threshold:g}, per seed; "
            f"{paired}. Open markers: never reached, shown at the last step (censored)."
        )
    if measure.name.startswith(names.SECONDS_TO + ":"):
        return (
            f"Cumulative train-only seconds at the first evaluation where accuracy reached "
            f"{measure.threshold:g}, per seed; {paired}. Open markers: never reached, shown at "
            "the run's total (censored)."
        )
    if measure.name == names.EPOCH_TRAIN_SECONDS:
        return "Train-only wall time per epoch (evaluation excluded), per seed, paired by seed." + (
            " Some runs shared the machine: timings use only the runs that ran alone."
            if results.contended
            else ""
        )
    if measure.name == names.LOG_LOSS_SPREAD:
        return (
            "Standard deviation of log(train loss) around its rolling median after a 10% "
            "warm-up: the noise of the loss with its downward trend removed. Paired by seed."
        )
    return f"{measure.title} ({measure.unit}), per seed; {paired}."


CLAIM_SLUGS = {
    names.STEPS_TO: "steps",
    names.EPOCH_TRAIN_SECONDS: "time",
    names.LOG_LOSS_SPREAD: "noise",
}


def forest_rows(results: StudyResults) -> list[dict]:
    """The verdicts table as the forest plot's rows, grouped by claim."""
    directions = {c.metric: c.direction for c in results.spec.claims}
    rows = []
    for row, text in zip(results.claim_verdicts, verdict_rows(results), strict=True):
        claim = measure(row.claim)
        rows.append(
            {
                "claim": f"{claim.title} (claimed: {directions.get(row.claim, '?')})",
                "variant": row.variant,
                "kind": row.estimate_kind,
                "estimate": float(row.estimate),
                "low": float(row.ci_low),
                "high": float(row.ci_high),
                "margin": row.margin,
                "tone": text["tone"],
                "verdict": text["verdict"],
            }
        )
    return sorted(rows, key=lambda r: [x["claim"] for x in rows].index(r["claim"]))


def forest_figure(results: StudyResults) -> Figure | None:
    """The headline figure: every variant × claim, estimate and interval, coloured by verdict."""
    if not results.claim_verdicts:
        return None
    plots.set_style()
    level = "the interval at the look's level" if results.design else "its 95% interval"
    return Figure(
        "forest",
        "Every verdict at a glance",
        f"One row per variant and claim: the estimate (dot) and {level} (bar), against the "
        "line of no difference (0 for differences, 1 for ratios); dashed: a "
        "claim's equivalence margin. Colour and label: the verdict (green supported, red "
        "contradicted, blue equivalent, amber inconclusive).",
        plots.to_png(plots.forest(forest_rows(results))),
    )


def study_figures(results: StudyResults) -> list[Figure]:
    plots.set_style()
    runs, history, arms = results.runs, results.history, results.arms
    n_seeds = runs.groupby("arm").size().min()
    dataset = results.dataset_title
    figures = [
        Figure(
            "accuracy",
            "Accuracy during training",
            f"Accuracy on the first {eval_subset_text(results)} {dataset} test images at each "
            f"evaluation step: mean over seeds with its 95% bootstrap band; each seed is a faint "
            f"line (n = {n_seeds} seeds per arm). Right: the same, zoomed on the upper range.",
            plots.to_png(plots.accuracy_curves(history, runs, arms)),
        ),
        Figure(
            "loss",
            "Training loss",
            "Train loss of each step's batch, smoothed per run by a centred rolling median, "
            "then averaged over seeds; the band is ± one standard deviation across seeds. "
            "Log scale.",
            plots.to_png(plots.loss_curves(history, runs, arms)),
        ),
        Figure(
            "reached",
            "Seeds past each accuracy threshold",
            "Fraction of each arm's seeds whose evaluation accuracy has reached the threshold "
            "by the given step. A curve that never reaches 1 has censored seeds.",
            plots.to_png(plots.reached_curves(results.fractions, arms)),
        ),
    ]
    for claim in results.spec.claims:
        measure = claim.measure
        reached = (
            names.threshold_column(names.REACHED, measure.threshold)
            if measure.threshold is not None
            else None
        )
        figures.append(
            Figure(
                CLAIM_SLUGS.get(measure.name.split(":")[0], measure.column),
                f"{measure.title}, per seed",
                claim_caption(measure, results),
                plots.to_png(plots.paired_lines(runs, measure.column, arms, measure.unit, reached)),
                narrow=True,
            )
        )
    return figures


def demo_figures(demo: Demo, results: StudyResults) -> list[Figure]:
    """The paper's demo drawn: random test images with each arm's prediction, and one
    run's mistakes."""
    noun = dataset_info(results.spec.dataset).noun
    predictions, labels, chosen = demo.predictions, demo.labels, demo.chosen
    captions = [
        f"true {labels[i]}\n" + "\n".join(f"{arm}: {p[i]}" for arm, p in predictions.items())
        for i in chosen
    ]
    wrong = [any(p[i] != labels[i] for p in predictions.values()) for i in chosen]
    figures = [
        Figure(
            "demo",
            f"Ten random test {noun}",
            f"Ten {results.dataset_title} test images drawn at random (generator seeded with "
            f"{demo.seed}), with the label and each arm's prediction from its seed-{demo.seed} "
            "run; red marks a mistake by any arm.",
            plots.to_png(
                plots.digit_grid(
                    display_images(demo.images[chosen]), captions, wrong, columns=5, cell=(1.3, 2.0)
                )
            ),
        )
    ]
    shown_arm = results.arms[-1]
    if shown_arm in predictions:
        mistakes = np.flatnonzero(predictions[shown_arm] != labels)
        shown = mistakes[:MAX_MISCLASSIFIED]
        figures.append(
            Figure(
                "errors",
                f"Misclassified {noun} of {shown_arm}, seed {demo.seed}",
                f"{len(mistakes)} of {len(labels)} test images are misclassified by this run; "
                f"the first {len(shown)} are shown as true → predicted.",
                plots.to_png(
                    plots.digit_grid(
                        display_images(demo.images[shown]),
                        [f"{labels[i]} → {predictions[shown_arm][i]}" for i in shown],
                        [False] * len(shown),
                    )
                ),
            )
        )
    return figures


def glyph_note(results: StudyResults) -> str:
    """One sentence when a name in the study has characters no installed font can draw."""
    names = [results.study, *results.spec.arm_names, results.spec.description or ""]
    missing = sorted(plots.missing_glyphs | fonts.undrawable("".join(names)))
    if not missing:
        return ""
    return (
        f"Some characters of this study's names ({' '.join(missing)}) have no glyph in the "
        "fonts installed here and show as boxes in the figures and the PDF. Install a font "
        "that covers them (`make system-deps` installs fonts-noto-cjk) and render again."
    )
