"""The study run in MLflow: the rendered report, its verdicts and a description, written back
so that whoever has only the tracking server has the whole study (`mnistlab fetch-report`)."""

from __future__ import annotations

import math
from pathlib import Path

from mnistlab.names import (
    EQUIVALENCE_STATISTICS,
    NOTE_TAG,
    REPORT_ARTIFACTS,
    VERDICT_STATISTICS,
    arm_count_key,
    claim_tag_key,
    verdict_metric_key,
    verdict_tag_key,
)
from mnistlab.report.tables import title, verdict_rows
from mnistlab.results.evidence import StudyResults
from mnistlab.stats.verdicts import Verdict
from mnistlab.store.connect import check_loggable
from mnistlab.store.store import Store


def description(results: StudyResults) -> str:
    """The study run's Markdown description: the question, the verdicts, how to rebuild."""
    seeds = ", ".join(f"{arm}: {n}" for arm, n in results.runs.groupby("arm").size().items())
    lines = [
        f"# {title(results)}",
        "",
        f"Study **{results.study}**: {', '.join(results.variants) or 'no variant'} against "
        f"{results.baseline} on {results.dataset_title}; seeds per arm {seeds or 'none'}.",
        "",
    ]
    rows = verdict_rows(results)
    if rows:
        margins = any(r["equivalence"] for r in rows)
        lines += [
            "| claim | n | estimate | CI (its level) | p (Holm) | verdict |"
            + (" equivalence (margin, TOST p, 1 − 2α CI) |" if margins else ""),
            "|---|---|---|---|---|---|" + ("---|" if margins else ""),
        ]
        lines += [
            f"| {r['statement']} | {r['n']} | {r['estimate']} | {r['interval']} | {r['p_holm']} "
            f"| **{r['verdict']}** |" + (f" {r['equivalence'] or '–'} |" if margins else "")
            for r in rows
        ]
    else:
        lines.append("No verdicts: " + " ".join(results.notes))
    lines += [
        "",
        f"The report is in this run's artifacts under `{REPORT_ARTIFACTS}/` (index.html, "
        "report.pdf, CSV tables). Rebuild it from the runs with "
        f"`mnistlab report {results.study} --tracking-uri {results.tracking_uri}`, or download "
        f"the last one with `mnistlab fetch-report {results.study} --tracking-uri "
        f"{results.tracking_uri}`.",
    ]
    return "\n".join(lines)


def verdict_record(results: StudyResults) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags): per variant and claim its estimate, interval, Holm p and verdict; n
    per arm. Keys use the measure's column (no colons: Windows clients refuse them)."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for row in results.verdicts.itertuples():
        p = row.p_sequential if hasattr(row, "p_sequential") else row.p_holm
        values = (row.estimate, row.ci_low, row.ci_high, p)
        for name, value in zip(VERDICT_STATISTICS, values, strict=True):
            if math.isfinite(value):
                metrics[verdict_metric_key(row.variant, row.metric, name)] = float(value)
        if math.isfinite(getattr(row, "margin", math.nan)):
            values = (
                row.margin,
                getattr(row, "p_tost_lower", math.nan),
                getattr(row, "p_tost_upper", math.nan),
                row.p_equivalence_holm,
                row.ci90_low,
                row.ci90_high,
            )
            for name, value in zip(EQUIVALENCE_STATISTICS, values, strict=True):
                if math.isfinite(value):
                    metrics[verdict_metric_key(row.variant, row.metric, name)] = float(value)
        tags[verdict_tag_key(row.variant, row.metric)] = str(Verdict(row.verdict))
        tags[claim_tag_key(row.variant, row.metric)] = row.statement
    for arm, n in results.runs.groupby("arm").size().items():
        metrics[arm_count_key(arm)] = float(n)
    return metrics, tags


def publish_report(store: Store, results: StudyResults, folder: Path) -> tuple[str, str]:
    """Write the report in `folder` and its verdicts to the study run.

    Returns (experiment id, study run id).

    The files replace those of the last report under the same names (the set is always the
    same files), and the verdict metrics take a new latest value, so an older report never
    stands beside a newer verdict.
    """
    experiment = store.find_experiment(results.study)
    run_id = store.study_run(experiment.experiment_id, results.study)
    metrics, tags = verdict_record(results)
    tags = {**tags, NOTE_TAG: description(results)}
    check_loggable(metrics, tags)  # before the first write: all of it is written, or none
    store.log_files(run_id, folder, REPORT_ARTIFACTS)
    store.log_run_metrics(run_id, metrics, step=0)
    store.set_run_tags(run_id, tags)
    return experiment.experiment_id, run_id


def fetch_report(store: Store, study: str, folder: Path) -> Path:
    """Download the study run's last report into folder/<study>/; returns that folder."""
    from mnistlab.report.render import ReportError, replace_folder

    experiment = store.find_experiment(study)
    run_id = store.study_run(experiment.experiment_id, study, create=False) if experiment else None
    if run_id is None:
        raise ReportError(
            f"No study run for {study!r} in {store.tracking_uri}: it was never studied there "
            "with this mnistlab. Run `mnistlab study` and `mnistlab report` first."
        )
    if not store.list_files(run_id, REPORT_ARTIFACTS):
        raise ReportError(
            f"Study {study!r} has no rendered report in {store.tracking_uri} yet. Run "
            f"`mnistlab report {study} --tracking-uri {store.tracking_uri}` where the runs are."
        )
    target = Path(folder) / study

    def download(staging: Path) -> None:
        fetched = store.download(run_id, REPORT_ARTIFACTS, staging)
        for path in fetched.iterdir():
            path.rename(staging / path.name)
        fetched.rmdir()

    replace_folder(target, download)
    return target
