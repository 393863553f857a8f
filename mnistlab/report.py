"""The study report: figures, an HTML page (Jinja2) and a PDF (WeasyPrint), plus CSV tables.

Every file is written to a temporary name and moved into place, so a failure never leaves
a half-written report behind.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from mlflow import MlflowClient

from mnistlab import plots
from mnistlab.analysis import MIN_SEEDS_FOR_TEST
from mnistlab.results import StudyResults

DEMO_DIGITS = 10
MAX_MISCLASSIFIED = 40


@dataclass
class Figure:
    slug: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def study_figures(results: StudyResults) -> list[Figure]:
    plots.set_style()
    runs, history, models = results.runs, results.history, results.models
    primary = results.primary_threshold
    n_seeds = runs.groupby("model").size().min()
    spec = results.spec.get("settings", {})
    eval_subset = spec.get("eval_subset", 2000)
    figures = [
        Figure(
            "accuracy",
            "Accuracy during training",
            f"Accuracy on the first {eval_subset} test images at each evaluation step: mean "
            f"over seeds with its 95% bootstrap band; each seed is a faint line (n = {n_seeds} "
            "seeds per model). Right: the same, zoomed on the upper range.",
            plots.to_png(plots.accuracy_curves(history, runs, models)),
        ),
        Figure(
            "loss",
            "Training loss",
            "Train loss of each step's batch, smoothed per run by a centred rolling median, "
            "then averaged over seeds; the band is ± one standard deviation across seeds. "
            "Log scale.",
            plots.to_png(plots.loss_curves(history, runs, models)),
        ),
        Figure(
            "reached",
            "Seeds past each accuracy threshold",
            "Fraction of each model's seeds whose evaluation accuracy has reached the threshold "
            "by the given step. A curve that never reaches 1 has censored seeds.",
            plots.to_png(plots.reached_curves(results.fractions, models)),
        ),
        Figure(
            "steps",
            f"Steps to {primary:.0%} accuracy, per seed",
            f"First evaluation step at which accuracy reached {primary:g}, per seed; grey lines "
            "join the two nets trained on the same seed (same batches). Open markers: never "
            "reached, shown at the last step (censored).",
            plots.to_png(
                plots.paired_lines(
                    runs,
                    f"steps_to_{primary:g}",
                    models,
                    "steps",
                    reached_column=f"reached_{primary:g}",
                )
            ),
        ),
        Figure(
            "time",
            "Train time per epoch, per seed",
            "Train-only wall time per epoch (evaluation excluded), per seed, paired by seed."
            + (" Some runs shared the machine: timings contended." if results.contended else ""),
            plots.to_png(plots.paired_lines(runs, "epoch_train_seconds", models, "seconds")),
        ),
        Figure(
            "noise",
            "Loss fluctuation, per seed",
            "Standard deviation of log(train loss) around its rolling median after a 10% "
            "warm-up: the noise of the loss with its downward trend removed. Paired by seed.",
            plots.to_png(
                plots.paired_lines(runs, "log_loss_spread", models, "SD of log-loss residual")
            ),
        ),
    ]
    return figures


def demo_figures(
    results: StudyResults, client: MlflowClient, data_dir: Path | str | None
) -> tuple[list[Figure], str]:
    """The paper's demo: ten random test digits predicted by each model, and one run's errors.

    Needs the runs' weights (MLflow artifacts) and MNIST; without them the report says why.
    """
    import torch

    from mnistlab.data import DataError, load_mnist, to_float_images
    from mnistlab.models import build_model
    from mnistlab.tracking import download_weights
    from mnistlab.train import predict

    try:
        mnist = load_mnist(data_dir, download=False)
    except DataError as error:
        return [], f"The digit demo is missing: {error}"
    images = to_float_images(mnist.test_images)
    labels = mnist.test_labels.numpy()
    first_seed = int(results.runs["seed"].min())
    predictions = {}
    with tempfile.TemporaryDirectory() as folder:
        for model_name in results.models:
            row = results.runs[
                (results.runs["model"] == model_name) & (results.runs["seed"] == first_seed)
            ]
            if row.empty:
                continue
            try:
                path = download_weights(client, row["run_id"].iloc[0], Path(folder) / model_name)
            except Exception as error:  # noqa: BLE001 - artifacts may live on another machine
                return [], f"The digit demo is missing: weights could not be read ({error})."
            model = build_model(model_name)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            predictions[model_name] = predict(model, images).numpy()
    rng = np.random.default_rng(first_seed)
    chosen = rng.choice(len(labels), DEMO_DIGITS, replace=False)
    captions = [
        f"true {labels[i]}\n" + "\n".join(f"{m}: {p[i]}" for m, p in predictions.items())
        for i in chosen
    ]
    wrong = [any(p[i] != labels[i] for p in predictions.values()) for i in chosen]
    figures = [
        Figure(
            "demo",
            "Ten random test digits",
            f"Ten test digits drawn at random (generator seeded with {first_seed}), with the "
            f"label and each model's prediction from its seed-{first_seed} run; red marks a "
            "mistake by any model.",
            plots.to_png(
                plots.digit_grid(
                    mnist.test_images[chosen].numpy(), captions, wrong, columns=5, cell=(1.3, 2.0)
                )
            ),
        )
    ]
    shown_model = results.models[-1]
    if shown_model in predictions:
        mistakes = np.flatnonzero(predictions[shown_model] != labels)
        shown = mistakes[:MAX_MISCLASSIFIED]
        figures.append(
            Figure(
                "errors",
                f"Misclassified digits of {shown_model}, seed {first_seed}",
                f"{len(mistakes)} of {len(labels)} test digits are misclassified by this run; "
                f"the first {len(shown)} are shown as true → predicted.",
                plots.to_png(
                    plots.digit_grid(
                        mnist.test_images[shown].numpy(),
                        [f"{labels[i]} → {predictions[shown_model][i]}" for i in shown],
                        [False] * len(shown),
                    )
                ),
            )
        )
    return figures, ""


def setup_facts(results: StudyResults) -> dict[str, str]:
    runs = results.runs
    first = runs.iloc[0] if not runs.empty else {}

    def values(column: str) -> str:
        return ", ".join(sorted({str(v) for v in runs[column] if str(v)})) or "unknown"

    return {
        "Models": ", ".join(results.models) + f" (baseline: {results.baseline})",
        "Seeds per model": ", ".join(f"{m}: {n}" for m, n in runs.groupby("model").size().items()),
        "Settings": ", ".join(f"{k} = {v}" for k, v in results.spec.get("settings", {}).items())
        or "paper defaults",
        "Overrides": ", ".join(
            f"{m}: " + ", ".join(f"{k} = {v}" for k, v in o.items())
            for m, o in results.spec.get("overrides", {}).items()
        )
        or "none",
        "Accuracy thresholds": ", ".join(f"{t:g}" for t in results.thresholds)
        + f" (claim 1 tested at {results.primary_threshold:g})",
        "Device": values("device") + (f" ({values('gpu')})" if first.get("gpu") else ""),
        "CPU": values("cpu"),
        "Threads per run": values("threads"),
        "Timings": "contended (runs shared the machine)"
        if results.contended
        else "clean (one run at a time)",
        "Library versions": f"torch {values('torch_version')}, mlflow {values('mlflow_version')}, "
        f"Python {values('python_version')}",
        "Git commit": values("git_commit")
        + (" (with uncommitted changes)" if "true" in set(runs["git_dirty"]) else ""),
        "MLflow store": f"{results.tracking_uri}, experiment '{results.study}'",
    }


def format_number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def verdict_rows(results: StudyResults) -> list[dict[str, str]]:
    rows = []
    for row in results.verdicts.itertuples():
        ratio = row.estimate_kind == "ratio"
        unit = "×" if ratio else ""
        rows.append(
            {
                "statement": row.statement,
                "n": str(row.n),
                "means": f"{format_number(row.baseline_mean, 4)} vs {format_number(row.variant_mean, 4)}",
                "estimate": f"{row.estimate_kind} {format_number(row.estimate, 4)}{unit}",
                "interval": f"[{format_number(row.ci_low, 4)}, {format_number(row.ci_high, 4)}]",
                "p": format_number(row.p_value),
                "p_holm": format_number(row.p_holm),
                "effect": format_number(row.effect_size, 2),
                "verdict": row.verdict,
                "note": row.note,
            }
        )
    return rows


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
    for row in results.runs.sort_values(["seed", "model"]).to_dict("records"):
        rows.append(
            {
                "model": row["model"],
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
    n = int(results.runs.groupby("model").size().min()) if not results.runs.empty else 0
    items = [
        f"One machine, one data set, one training budget ({n} seeds per model). The results say "
        "how these two nets behave under this protocol, not how a third convolution behaves in "
        "general.",
        "Accuracy during training is measured on the first 2,000 test images, as in the paper; "
        "reaching a threshold there is noisy at the level of a few images. The full-test "
        "accuracy after training is reported separately.",
        "Steps to a threshold are counted at evaluation steps only, so they are resolved to the "
        "evaluation interval; runs that never reach a threshold are censored at their last "
        "evaluation, which understates their true count.",
        "Wall time depends on the machine, the thread count and what else ran; the ratio between "
        "the nets, paired by seed and interleaved in time, is the robust figure.",
        "Loss fluctuation is judged on the log scale, i.e. relative to the loss's own level: a net "
        "whose loss is lower can be noisier in relative terms and quieter in absolute terms. The "
        "raw rolling SD is shown beside it for that reason.",
        "Three claims are tested with Holm's correction; other thresholds and measures in the "
        "tables are descriptive.",
    ]
    if n < MIN_SEEDS_FOR_TEST:
        items.insert(0, f"Only {n} seeds per model: too few for any verdict but 'inconclusive'.")
    return items


def render_html(
    results: StudyResults, figures: list[Figure], demo_note: str, generated: str
) -> str:
    environment = Environment(
        loader=PackageLoader("mnistlab", "templates"), autoescape=select_autoescape(["html"])
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        results=results,
        setup=setup_facts(results),
        verdicts=verdict_rows(results),
        secondary=secondary_rows(results),
        figures=figures,
        runs=run_rows(results),
        limits=limits(results),
        demo_note=demo_note,
        generated=generated,
        primary=f"{results.primary_threshold:g}",
    )


def _write_atomically(path: Path, write) -> None:  # noqa: ANN001 - write(tmp_path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from other users
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class ReportPaths:
    html: Path
    pdf: Path
    tables: list[Path]


def write_report(
    results: StudyResults, client: MlflowClient, out_dir: Path, data_dir: Path | str | None = None
) -> ReportPaths:
    """Render and write index.html, report.pdf and the CSV tables under out_dir/<study>/."""
    from weasyprint import HTML

    folder = Path(out_dir) / results.study
    figures = study_figures(results) if not results.runs.empty else []
    demo, demo_note = demo_figures(results, client, data_dir)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = render_html(results, figures + demo, demo_note, generated)
    pdf = HTML(string=html).write_pdf()  # rendered fully in memory before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "runs.csv": results.runs,
        "verdicts.csv": results.verdicts,
        "secondary.csv": results.secondary,
        "summary.csv": results.summary,
    }
    for name, frame in tables.items():
        _write_atomically(folder / name, lambda p, f=frame: f.to_csv(p, index=False))
    _write_atomically(folder / "report.pdf", lambda p: p.write_bytes(pdf))
    _write_atomically(folder / "index.html", lambda p: p.write_text(html, encoding="utf-8"))
    return ReportPaths(
        folder / "index.html", folder / "report.pdf", [folder / name for name in tables]
    )
