"""The report's text sections, as rows and sentences for the template: the setup, the runs, the
secondary measures, the limits of the study, the claims and the seeds-needed table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.report.links import display_store
from mnistlab.report.tables import asks_the_papers_question, format_number, margin_text
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.describe import study_recipes
from mnistlab.stats.power import SEED_GRID


def eval_subset_text(results: StudyResults) -> str:
    return " or ".join(f"{n:,}" for n in results.spec.eval_subsets())


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
        **{f"{arm} against {spec.baseline}": words for arm, words in results.differences.items()},
        **{
            f"Recipe of {arm}": words
            for arm, words in study_recipes(spec, results.parameters).items()
        },
        "Seeds per arm": ", ".join(
            f"{arm}: {n}" for arm, n in runs.groupby("arm").size().loc[results.arms].items()
        ),
        "Settings": ", ".join(f"{k} = {v}" for k, v in spec.settings.items()) or "paper defaults",
        "Claims tested": f"{len(spec.claims)} claim(s) × {len(results.variants)} variant(s) = "
        f"{results.family_size} test(s) under Holm's correction; a verdict needs at least "
        f"{results.min_seeds} paired seeds",
        "Accuracy thresholds": ", ".join(f"{t:g}" for t in spec.thresholds),
        "Device": values(names.DEVICE_TAG)
        + (f" ({values(names.GPU_TAG)})" if first.get(names.GPU_TAG) else ""),
        "CPU": values(names.CPU_TAG),
        "Threads per run": values(names.THREADS_TAG),
        "Timings": "some runs shared the machine (left out of timing claims)"
        if results.contended
        # What mnistlab can see, said as that: other stores and other programs are unseen.
        else "no overlap seen (no other run in this store overlapped a run on its host; "
        "runs in other stores and other programs on the machine are not seen)",
        "Library versions": f"torch {values(names.TORCH_VERSION_TAG)}, "
        f"mlflow {values(names.MLFLOW_VERSION_TAG)}, Python {values(names.PYTHON_VERSION_TAG)}",
        "Git commit": values(names.GIT_COMMIT_TAG)
        + (" (with uncommitted changes)" if names.TRUE in set(runs[names.GIT_DIRTY_TAG]) else ""),
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
    steps = names.threshold_column(names.STEPS_TO, results.primary_threshold)
    reached = names.threshold_column(names.REACHED, results.primary_threshold)
    rows = []
    order = {arm: i for i, arm in enumerate(results.arms)}
    runs = results.runs.assign(order=results.runs["arm"].map(order))
    for row in runs.sort_values(["seed", "order"]).to_dict("records"):
        rows.append(
            {
                "arm": row["arm"],
                "seed": str(row["seed"]),
                "steps": f"{row[steps]:.0f}" + ("" if row[reached] else " (not reached)"),
                "seconds": f"{row[names.EPOCH_TRAIN_SECONDS]:.2f}",
                "spread": f"{row[names.LOG_LOSS_SPREAD]:.4f}",
                "accuracy": f"{row[names.TEST_ACCURACY]:.4f}",
                "run_id": row[names.RUN_ID],
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
    for column, label in ((names.THREADS_TAG, "thread counts"), (names.DEVICE_TAG, "devices")):
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


def seeds_cell(seeds) -> str:  # noqa: ANN001 - a count, or None/NaN: more than the grid
    return str(int(seeds)) if seeds is not None and np.isfinite(seeds) else f"> {SEED_GRID[-1]}"


def needed_text(row) -> str:  # noqa: ANN001 - a row of power_analysis's table
    """Seeds at the observed effect with the range the pilot's error allows, or why none."""
    if row.n < 2:
        return "–"
    if not row.sizable:
        return "none: no effect shown"
    low, high = seeds_cell(row.seeds_needed_low), seeds_cell(row.seeds_needed_high)
    return f"{seeds_cell(row.seeds_needed)} ({low}–{high})"


def power_rows(power: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for row in power.itertuples():
        unit = "×" if row.estimate_kind == "ratio" else ""
        rows.append(
            {
                "test": f"{row.variant}: {row.claim}",
                "n": str(row.n),
                "observed": f"{format_number(row.observed, 4)}{unit}",
                "power_now": f"{row.power_now:.0%} ± {row.power_now_se:.1%}"
                if np.isfinite(row.power_now)
                else "–",
                "needed": needed_text(row),
                "detectable": f"{format_number(row.detectable, 4)}{unit}",
                "note": row.note,
            }
        )
    return rows


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
