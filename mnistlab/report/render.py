"""The study report: figures, an HTML page (Jinja2) and a PDF (WeasyPrint), plus CSV tables.

The whole set is written into a staging folder and swapped in, so a failure never leaves a
half-written report, nor new tables beside an old page.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from mnistlab.errors import MnistlabError
from mnistlab.report import clock, conclusion, plots
from mnistlab.report.demo import Demo
from mnistlab.report.tables import (
    asks_the_papers_question,
    format_number,
    margin_text,
    title,
    verdict_rows,
)
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import Measure, measure
from mnistlab.stats.power import SEED_GRID, SIMULATIONS, TARGET_POWER
from mnistlab.training.datasets import DATASETS

MAX_MISCLASSIFIED = 40
LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` serves a local store
SMALL_TABLE = 10  # a table of fewer rows is never split across PDF pages


@dataclass(frozen=True)
class MlflowLinks:
    """Where the study lives in the MLflow UI: for the report's links."""

    base: str  # the UI's address: the tracking server, or `make ui`'s for a local file
    experiment_id: str
    study_run_id: str | None = None

    @property
    def experiment(self) -> str:
        # The Model training view: MLflow 3's UI would otherwise open on GenAI.
        return f"{self.base}/#/experiments/{self.experiment_id}?workflowType=machine_learning"

    def run(self, run_id: str) -> str:
        return f"{self.base}/#/experiments/{self.experiment_id}/runs/{run_id}"

    @property
    def study_run(self) -> str | None:
        return self.run(self.study_run_id) if self.study_run_id else None


def ui_base(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def display_store(tracking_uri: str, project: Path | None = None) -> str:
    """The store as a reader should see it: a local file relative to the project (the folder
    mnistlab runs in), never an absolute path of this machine; a server as it is."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return tracking_uri
    path = Path(tracking_uri[len(prefix) :])
    project = (project or Path.cwd()).resolve()
    try:
        return prefix + path.resolve().relative_to(project).as_posix()
    except ValueError:
        return f"{prefix}…/{path.name} (outside the project folder)"


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


def eval_subset_text(results: StudyResults) -> str:
    return " or ".join(f"{n:,}" for n in results.spec.eval_subsets())


def claim_caption(measure: Measure, results: StudyResults) -> str:
    paired = "grey lines join the arms trained on the same seed (same batches)"
    if measure.name.startswith("steps_to:"):
        return (
            f"First evaluation step at which accuracy reached {measure.threshold:g}, per seed; "
            f"{paired}. Open markers: never reached, shown at the last step (censored)."
        )
    if measure.name.startswith("seconds_to:"):
        return (
            f"Cumulative train-only seconds at the first evaluation where accuracy reached "
            f"{measure.threshold:g}, per seed; {paired}. Open markers: never reached, shown at "
            "the run's total (censored)."
        )
    if measure.name == "epoch_train_seconds":
        return "Train-only wall time per epoch (evaluation excluded), per seed, paired by seed." + (
            " Some runs shared the machine: timings use only the runs that ran alone."
            if results.contended
            else ""
        )
    if measure.name == "log_loss_spread":
        return (
            "Standard deviation of log(train loss) around its rolling median after a 10% "
            "warm-up: the noise of the loss with its downward trend removed. Paired by seed."
        )
    return f"{measure.title} ({measure.unit}), per seed; {paired}."


CLAIM_SLUGS = {"steps_to": "steps", "epoch_train_seconds": "time", "log_loss_spread": "noise"}


def forest_rows(results: StudyResults) -> list[dict]:
    """The verdicts table as the forest plot's rows, grouped by claim."""
    directions = {c.metric: c.direction for c in results.spec.claims}
    rows = []
    for row, text in zip(results.verdicts.itertuples(), verdict_rows(results), strict=True):
        claim = measure(row.claim)
        rows.append(
            {
                "claim": f"{claim.title} (claimed: {directions.get(row.claim, '?')})",
                "variant": row.variant,
                "kind": row.estimate_kind,
                "estimate": float(row.estimate),
                "low": float(row.ci_low),
                "high": float(row.ci_high),
                "margin": float(getattr(row, "margin", float("nan"))),
                "tone": text["tone"],
                "verdict": text["verdict"],
            }
        )
    return sorted(rows, key=lambda r: [x["claim"] for x in rows].index(r["claim"]))


def forest_figure(results: StudyResults) -> Figure | None:
    """The headline figure: every variant × claim, estimate and interval, coloured by verdict."""
    if results.verdicts.empty:
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
        reached = f"reached_{measure.threshold:g}" if measure.threshold is not None else None
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
    noun = DATASETS[results.spec.dataset].noun
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
                plots.digit_grid(demo.images[chosen], captions, wrong, columns=5, cell=(1.3, 2.0))
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
                        demo.images[shown],
                        [f"{labels[i]} → {predictions[shown_arm][i]}" for i in shown],
                        [False] * len(shown),
                    )
                ),
            )
        )
    return figures


def describe_arm(results: StudyResults, name: str) -> str:
    arm = results.spec.arm(name)
    details = ([] if arm.model == name else [f"model {arm.model}"]) + [
        f"{k} = {v}" for k, v in arm.settings.items()
    ]
    if name == results.baseline:
        details.append("baseline")
    return name + (f" ({', '.join(details)})" if details else "")


def setup_facts(results: StudyResults) -> dict[str, str]:
    runs, spec = results.runs, results.spec
    first = runs.iloc[0] if not runs.empty else {}

    def values(column: str) -> str:
        return ", ".join(sorted({str(v) for v in runs[column] if str(v)})) or "unknown"

    return {
        "Dataset": results.dataset_title,
        "Arms": "; ".join(describe_arm(results, arm) for arm in spec.arm_names),
        "Seeds per arm": ", ".join(
            f"{arm}: {n}" for arm, n in runs.groupby("arm").size().loc[results.arms].items()
        ),
        "Settings": ", ".join(f"{k} = {v}" for k, v in spec.settings.items()) or "paper defaults",
        "Claims tested": f"{len(spec.claims)} claim(s) × {len(results.variants)} variant(s) = "
        f"{results.family_size} test(s) under Holm's correction; a verdict needs at least "
        f"{results.min_seeds} paired seeds",
        "Accuracy thresholds": ", ".join(f"{t:g}" for t in spec.thresholds),
        "Device": values("device") + (f" ({values('gpu')})" if first.get("gpu") else ""),
        "CPU": values("cpu"),
        "Threads per run": values("threads"),
        "Timings": "some runs shared the machine (left out of timing claims)"
        if results.contended
        else "clean (one run at a time)",
        "Library versions": f"torch {values('torch_version')}, mlflow {values('mlflow_version')}, "
        f"Python {values('python_version')}",
        "Git commit": values("git_commit")
        + (" (with uncommitted changes)" if "true" in set(runs["git_dirty"]) else ""),
        "MLflow store": f"{display_store(results.tracking_uri)}, experiment '{results.study}'",
    }


def secondary_rows(results: StudyResults) -> list[dict[str, str]]:
    return [
        {
            "comparison": f"{row.variant} − {row.baseline}: {row.description}",
            "n": str(row.n),
            "means": f"{format_number(row.baseline_mean, 4)} vs {format_number(row.variant_mean, 4)}",
            "difference": format_number(row.difference, 3),
            "interval": f"[{format_number(row.ci_low, 3)}, {format_number(row.ci_high, 3)}]",
            "p": format_number(row.p_value),
        }
        for row in results.secondary.itertuples()
    ]


def run_rows(results: StudyResults) -> list[dict[str, str]]:
    primary = f"{results.primary_threshold:g}"
    rows = []
    order = {arm: i for i, arm in enumerate(results.arms)}
    runs = results.runs.assign(order=results.runs["arm"].map(order))
    for row in runs.sort_values(["seed", "order"]).to_dict("records"):
        rows.append(
            {
                "arm": row["arm"],
                "seed": str(row["seed"]),
                "steps": f"{row[f'steps_to_{primary}']:.0f}"
                + ("" if row[f"reached_{primary}"] else " (not reached)"),
                "seconds": f"{row['epoch_train_seconds']:.2f}",
                "spread": f"{row['log_loss_spread']:.4f}",
                "accuracy": f"{row['test_accuracy']:.4f}",
                "run_id": row["run_id"],
            }
        )
    return rows


def limits(results: StudyResults) -> list[str]:
    n = int(results.runs.groupby("arm").size().min()) if not results.runs.empty else 0
    spec = results.spec
    subject = (
        "how a third convolution behaves in general"
        if asks_the_papers_question(results)
        else "how these changes behave in general"
    )
    subset = eval_subset_text(results)
    items = [
        f"One machine, one data set ({results.dataset_title}), one training budget ({n} seeds "
        f"per arm). The results say how these arms behave under this protocol, not {subject}.",
        f"Accuracy during training is measured on the first {subset} test images"
        + (", as in the paper" if spec.eval_subsets() == [2000] else "")
        + "; reaching a threshold there is noisy at the level of a few images. The full-test "
        "accuracy after training is reported separately.",
        "Steps to a threshold are counted at evaluation steps only, so they are resolved to the "
        "evaluation interval; runs that never reach a threshold are censored at their last "
        "evaluation, which understates their true count.",
        "Wall time depends on the machine, the thread count and what else ran; the ratio between "
        "the arms, paired by seed and interleaved in time, is the robust figure.",
        "Loss fluctuation is judged on the log scale, i.e. relative to the loss's own level: a net "
        "whose loss is lower can be noisier in relative terms and quieter in absolute terms. The "
        "raw rolling SD is shown beside it for that reason.",
        f"{results.family_size} test(s) ({len(spec.claims)} claim(s) × {len(results.variants)} "
        "variant(s)) are corrected together with Holm's method; other thresholds and measures "
        "in the tables are descriptive.",
    ]
    for column, label in (("threads", "thread counts"), ("device", "devices")):
        values = sorted(set(results.runs[column].astype(str))) if not results.runs.empty else []
        if len(values) > 1:
            items.append(
                f"The runs mix {label} ({', '.join(values)}): results are reproducible bit for bit "
                "only at one thread count and device; across them they agree statistically."
            )
    if n < results.min_seeds:
        items.insert(
            0,
            f"Only {n} seeds per arm: too few for any verdict but 'inconclusive' (this family "
            f"of {results.family_size} test(s) needs at least {results.min_seeds}).",
        )
    return items


def claim_statements(results: StudyResults) -> list[str]:
    return [
        c.measure.claim(c.direction, "the variant", "the baseline", margin_text(c))
        for c in results.spec.claims
    ]


def measure_rows(results: StudyResults) -> list[dict[str, str]]:
    return [
        {"metric": c.metric, "title": c.measure.title, "compared": c.measure.comparison}
        for c in results.spec.claims
    ]


def power_rows(power: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for row in power.itertuples():
        unit = "×" if row.estimate_kind == "ratio" else ""
        rows.append(
            {
                "test": f"{row.variant}: {row.claim}",
                "n": str(row.n),
                "observed": f"{format_number(row.observed, 4)}{unit}",
                "power_now": f"{row.power_now:.0%}" if np.isfinite(row.power_now) else "–",
                "needed": str(row.seeds_needed)
                if row.seeds_needed is not None and np.isfinite(row.seeds_needed)
                else f"> {SEED_GRID[-1]}",
                "detectable": f"{format_number(row.detectable, 4)}{unit}",
                "note": row.note,
            }
        )
    return rows


def render_html(
    results: StudyResults,
    figures: list[Figure],
    demo_note: str,
    generated: str,
    power: pd.DataFrame | None = None,
    power_figure: Figure | None = None,
    links: MlflowLinks | None = None,
    forest: Figure | None = None,
    glyph_note: str = "",
) -> str:
    environment = Environment(
        loader=PackageLoader("mnistlab.report", "templates"), autoescape=select_autoescape(["html"])
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        results=results,
        setup=setup_facts(results),
        verdicts=verdict_rows(results),
        margins=any(row["equivalence"] for row in verdict_rows(results)),
        secondary=secondary_rows(results),
        figures=figures,
        runs=run_rows(results),
        limits=limits(results),
        demo_note=demo_note,
        generated=generated,
        primary=f"{results.primary_threshold:g}",
        title=title(results),
        paper_background=asks_the_papers_question(results),
        claims=claim_statements(results),
        measures=measure_rows(results),
        dataset=results.dataset_title,
        sentences=conclusion.verdict_sentences(results),
        clock=clock.clock_rows(results),
        clock_sentences=clock.clock_sentences(results)
        if not results.wall_clock_comparisons.empty
        else [],
        paper_answer=clock.papers_question(results)
        if asks_the_papers_question(results) and not results.wall_clock_comparisons.empty
        else "",
        checklist=conclusion.checklist(results),
        power=power_rows(power) if power is not None else [],
        target_power=f"{TARGET_POWER:.0%}",
        power_figure=power_figure,
        design=results.design,
        links=links,
        local_ui=LOCAL_UI,
        store=display_store(results.tracking_uri),
        forest=forest,
        glyph_note=glyph_note,
        toc=TOC,
        small_table=SMALL_TABLE,
    )


TOC = [
    ("conclusion", "Conclusion"),
    ("question", "The question"),
    ("setup", "Setup"),
    ("verdicts", "Verdicts"),
    ("seeds", "How many seeds?"),
    ("arms", "Results per arm"),
    ("figures", "Figures"),
    ("runs", "Every run"),
    ("limits", "Limits of this study"),
    ("checklist", "Reproducibility checklist"),
    ("reproducing", "Reproducing it"),
]


def glyph_note(results: StudyResults) -> str:
    """One sentence when a name in the study has characters no installed font can draw."""
    names = [results.study, *results.spec.arm_names, results.spec.description or ""]
    missing = sorted(plots.missing_glyphs | plots.undrawable("".join(names)))
    if not missing:
        return ""
    return (
        f"Some characters of this study's names ({' '.join(missing)}) have no glyph in the "
        "fonts installed here and show as boxes in the figures and the PDF. Install a font "
        "that covers them (`make system-deps` installs fonts-noto-cjk) and render again."
    )


class ReportError(MnistlabError):
    """The report cannot be written where asked; the message says why and what to do."""


def check_destination(out_dir: Path) -> None:
    """Refuse an output folder that cannot take the report, before seconds of rendering."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder. Pass a folder (default: reports).")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ReportError(
            f"--out {out} cannot be written: {existing} is not a writable folder. Pass another --out."
        )


def replace_folder(folder: Path, write) -> None:  # noqa: ANN001 - write(staging_folder)
    """Write the whole report set into a staging folder, then swap it in: a failure leaves
    the previous report as it was, and never a mix of old and new files."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the report from other users
        old = None
        if folder.exists() or folder.is_symlink():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            folder.rename(old)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink()


@dataclass
class ReportPaths:
    html: Path
    pdf: Path
    tables: list[Path]


def write_report(
    results: StudyResults,
    demo: Demo | None,
    demo_note: str,
    out_dir: Path,
    power: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    links: MlflowLinks | None = None,
) -> ReportPaths:
    """Render and write index.html, report.pdf and the CSV tables under out_dir/<study>/.

    power: results.power_analysis(results), for the section "How many seeds?".
    links: where the experiment, the study run and each run are in the MLflow UI.
    """
    from weasyprint import HTML

    folder = Path(out_dir) / results.study
    plots.missing_glyphs.clear()
    forest = forest_figure(results)
    figures = study_figures(results) if not results.runs.empty else []
    power_table, curves = power if power is not None else (pd.DataFrame(), pd.DataFrame())
    power_figure = None
    if not curves.empty:
        power_figure = Figure(
            "power",
            "How many seeds?",
            f"Power (the chance that a study of that many paired seeds decides the claim the "
            f"way this study's effect points, under Holm over the family) against the number "
            f"of seeds, from {SIMULATIONS:,} resampled studies each; dashed: "
            f"{TARGET_POWER:.0%}; dotted: this study's n.",
            plots.to_png(plots.power_curves(curves, int(power_table["n"].max()), TARGET_POWER)),
        )
    figures += demo_figures(demo, results) if demo is not None else []
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = render_html(
        results,
        figures,
        demo_note,
        generated,
        power_table,
        power_figure,
        links,
        forest,
        glyph_note(results),
    )
    pdf = HTML(string=html).write_pdf()  # rendered fully in memory before anything is written
    tables = {
        "runs.csv": results.runs,
        "verdicts.csv": results.verdicts,
        "secondary.csv": results.secondary,
        "summary.csv": results.summary,
        "wall_clock.csv": results.wall_clock,
        "power.csv": power_table,
    }

    def write(staging: Path) -> None:
        for name, frame in tables.items():
            frame.to_csv(staging / name, index=False)
        (staging / "report.pdf").write_bytes(pdf)
        (staging / "index.html").write_text(html, encoding="utf-8")
        for path in staging.iterdir():
            path.chmod(0o644)

    replace_folder(folder, write)
    return ReportPaths(
        folder / "index.html", folder / "report.pdf", [folder / name for name in tables]
    )
