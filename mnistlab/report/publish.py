"""The study run in MLflow: the rendered report, its verdicts and a description, written back
so that whoever has only the tracking server has the whole study (`mnistlab fetch-report`)."""

from __future__ import annotations

import math
from pathlib import Path

from mnistlab.errors import command_line
from mnistlab.names import (
    EQUIVALENCE_STATISTICS,
    NOTE_TAG,
    RANKING_FILE,
    REPORT_ARTIFACTS,
    VERDICT_STATISTICS,
    VERDICTS_FILE,
    arm_count_key,
    claim_tag_key,
    verdict_statistic_key,
    verdict_tag_key,
)
from mnistlab.report.links import MlflowLinks, display_store, ui_base
from mnistlab.report.ranking import markdown as ranking_markdown
from mnistlab.report.ranking import ranking_record
from mnistlab.report.tables import title, verdict_rows
from mnistlab.results.evidence import StudyResults
from mnistlab.stats.ranking import Ranking
from mnistlab.store.connect import check_loggable, resolve_tracking_uri
from mnistlab.store.store import Store

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param's value


def cell(text: object) -> str:
    """Text for a Markdown table cell: no pipe or line break can end it early."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def description(results: StudyResults) -> str:
    """The study run's Markdown description: the question, the verdicts, how to rebuild.

    A local store is named relative to the project (display_store), never by an absolute path
    of the machine that rendered it."""
    seeds = ", ".join(f"{arm}: {n}" for arm, n in results.runs.groupby("arm").size().items())
    store = display_store(results.tracking_uri)
    lines = [
        f"# {title(results)}",
        "",
        f"Study **{results.study}**: {', '.join(results.variants) or 'no variant'} against "
        f"{results.baseline} on {results.dataset_title}; seeds per arm {seeds or 'none'}.",
        "",
        *[f"- **{arm}** against {results.baseline}: {w}" for arm, w in results.differences.items()],
        "",
    ]
    rows = verdict_rows(results)
    if rows:
        margins = any(r["equivalence"] for r in rows)
        header = ["claim", "n", "estimate", "CI (its level)", "p (Holm)", "verdict"]
        header += ["equivalence (margin, TOST p, 1 − 2α CI)"] if margins else []
        lines += [
            "| " + " | ".join(header) + " |",
            "| " + " | ".join("---" for _ in header) + " |",
        ]
        for r in rows:
            cells = [r["statement"], r["n"], r["estimate"], r["interval"], r["p_holm"]]
            cells += [f"**{r['verdict']}**"] + ([r["equivalence"] or "–"] if margins else [])
            lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    else:
        lines.append("No verdicts: " + " ".join(results.notes))
    lines += [
        "",
        f"The report is in this run's artifacts under `{REPORT_ARTIFACTS}/` (index.html, "
        "report.pdf, CSV tables); the verdicts with every statistic are in "
        f"`{VERDICTS_FILE}` and in this run's tags. Rebuild the report from the runs with "
        f"`{command_line('report', results.study, '--tracking-uri', store)}`, or download "
        f"the last one with `{command_line('fetch-report', results.study, '--tracking-uri', store)}`.",
    ]
    return "\n".join(lines)


def _store_option(tracking_uri: str) -> tuple[str, ...]:
    """--tracking-uri URI for a command's hint, or nothing where URI is the default store."""
    return () if tracking_uri == resolve_tracking_uri(None) else ("--tracking-uri", tracking_uri)


def experiment_description(results: StudyResults) -> str:
    """The experiment's description (its page in the UI): what it is and where to look."""
    return (
        f"**{title(results)}** — mnistlab study `{results.study}`: "
        f"{', '.join(results.variants) or 'no variant'} against {results.baseline} on "
        f"{results.dataset_title}, paired by seed. The run **{results.study} (study)** holds the "
        "spec, the verdicts (its description and tags) and the report (artifacts `report/`); "
        "the training runs are nested under it. Group by tags → arm to see one row per arm."
    )


def format_statistic(value: float) -> str:
    return repr(float(value))


def verdict_record(results: StudyResults) -> tuple[dict[str, str], list[dict]]:
    """(tags, table): per variant and claim its estimate, interval, Holm p, equivalence
    statistics and verdict as tags, n per arm; and the same as one row per variant and claim.

    Tags, not metrics: a metric logged once is a single-bar chart of its own in the UI's Chart
    view, which would open on dozens of them instead of the training curves. Keys use the
    measure's column (no colons: Windows clients refuse them)."""
    tags: dict[str, str] = {}
    table: list[dict] = []
    for row in results.claim_verdicts:
        entry: dict = {"variant": row.variant, "claim": row.metric, "statement": row.statement}
        values = (row.estimate, row.ci_low, row.ci_high, row.p_shown)
        for name, value in zip(VERDICT_STATISTICS, values, strict=True):
            if math.isfinite(value):
                tags[verdict_statistic_key(row.variant, row.metric, name)] = format_statistic(value)
                entry[name] = float(value)
        if math.isfinite(row.margin):
            values = (
                row.margin,
                row.p_tost_lower,
                row.p_tost_upper,
                row.p_equivalence_holm,
                row.ci90_low,
                row.ci90_high,
            )
            for name, value in zip(EQUIVALENCE_STATISTICS, values, strict=True):
                if math.isfinite(value):
                    key = verdict_statistic_key(row.variant, row.metric, name)
                    tags[key] = format_statistic(value)
                    entry[name] = float(value)
        tags[verdict_tag_key(row.variant, row.metric)] = str(row.verdict)
        tags[claim_tag_key(row.variant, row.metric)] = row.statement
        entry["verdict"] = str(row.verdict)
        table.append(entry)
    for arm, n in results.runs.groupby("arm").size().items():
        tags[arm_count_key(arm)] = str(int(n))
    return tags, table


def study_params(results: StudyResults) -> dict[str, str]:
    """The study's settings as the study run's params (what the UI's runs table can show)."""
    spec = results.spec
    params = {
        "dataset": spec.dataset,
        "baseline": spec.baseline,
        "arms": ", ".join(spec.arm_names),
        "seeds": str(len(spec.seeds)),
        "claims": ", ".join(f"{c.metric} {c.direction}" for c in spec.claims),
        **{f"settings.{k}": str(v) for k, v in spec.settings.items()},
    }
    for arm in spec.arms:
        params[f"arm.{arm.name}"] = ", ".join(
            [f"model={arm.model}", *(f"{k}={v}" for k, v in arm.settings.items())]
        )
    return {k: v[:MAX_PARAM_LENGTH] for k, v in params.items()}


def study_end(store: Store, experiment_id: str, results: StudyResults) -> int | None:
    """When the study ended (ms): the latest end of the runs it reports on."""
    ours = set(results.runs["run_id"]) if not results.runs.empty else set()
    ends = [r.end_time for r in store.runs(experiment_id) if r.run_id in ours and r.end_time]
    return max(ends) if ends else None


def publish_report(
    store: Store, results: StudyResults, folder: Path, ranking: Ranking | None = None
) -> tuple[str, str]:
    """Write the report in `folder` and its verdicts (and ranking, if any) to the study run.

    Returns (experiment id, study run id).

    The files replace those of the last report under the same names (the set is always the
    same files), and the verdict tags are overwritten, so an older report never stands beside
    a newer verdict.
    """
    experiment = store.find_experiment(results.study)
    run_id = store.study_run(experiment.experiment_id, results.study)
    tags, table = verdict_record(results)
    note = description(results)
    if ranking is not None:
        ranking_tags, ranking_document = ranking_record(ranking)
        tags, note = {**tags, **ranking_tags}, "\n".join([note, *ranking_markdown(ranking)])
    tags = {**tags, NOTE_TAG: note}
    check_loggable({}, tags)  # before the first write: all of it is written, or none
    store.log_files(run_id, folder, REPORT_ARTIFACTS)
    store.log_json(run_id, table, VERDICTS_FILE)
    if ranking is not None:
        store.log_json(run_id, ranking_document, RANKING_FILE)
    store.set_run_tags(run_id, tags)
    store.log_new_params(run_id, study_params(results))
    end = study_end(store, experiment.experiment_id, results)
    if end is not None:
        store.set_run_end(run_id, end)
    store.set_experiment_description(experiment.experiment_id, experiment_description(results))
    # The report's link opens this view: written here too for studies recorded before it.
    store.set_runs_view(experiment.experiment_id, results.spec.arm_names)
    return experiment.experiment_id, run_id


def mlflow_links(store: Store, results: StudyResults) -> MlflowLinks | None:
    """Where the report's links point: the experiment, its study run, each run, in the UI."""
    experiment = store.find_experiment(results.study)
    if experiment is None:
        return None
    run_id = store.study_run(experiment.experiment_id, results.study, create=False)
    return MlflowLinks(ui_base(store.tracking_uri), experiment.experiment_id, run_id)


def fetch_report(store: Store, study: str, folder: Path) -> Path:
    """Download the study run's last report into folder/<study>/; returns that folder."""
    from mnistlab.report.destination import ReportError, replace_folder

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
            f"`{command_line('report', study, *_store_option(store.tracking_uri))}` where the "
            "runs are."
        )
    target = Path(folder) / study

    def download(staging: Path) -> None:
        fetched = store.download(run_id, REPORT_ARTIFACTS, staging)
        for path in fetched.iterdir():
            path.rename(staging / path.name)
        fetched.rmdir()

    replace_folder(target, download)
    return target
