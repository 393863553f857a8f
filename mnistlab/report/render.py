"""The study report: an HTML page (Jinja2) and a PDF (WeasyPrint), plus CSV tables.

The page is templates/report.html.j2 filled with report.sections' text and report.figures'
figures; report.destination swaps the whole set in at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from mnistlab.report import clock, conclusion, plots
from mnistlab.report.demo import Demo
from mnistlab.report.destination import replace_folder
from mnistlab.report.figures import (
    Figure,
    demo_figures,
    forest_figure,
    glyph_note,
    study_figures,
)
from mnistlab.report.links import LOCAL_UI, MlflowLinks, display_store
from mnistlab.report.ranking_section import ranking_context, with_ranking
from mnistlab.report.sections import (
    TOC,
    claim_statements,
    limits,
    measure_rows,
    power_rows,
    run_rows,
    secondary_rows,
    setup_facts,
)
from mnistlab.report.tables import asks_the_papers_question, title, verdict_rows
from mnistlab.results.evidence import StudyResults
from mnistlab.stats.planning import EFFECT_LEVEL
from mnistlab.stats.power import SIMULATIONS, TARGET_POWER
from mnistlab.stats.ranking import Ranking

SMALL_TABLE = 10  # a table of fewer rows is never split across PDF pages


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
    ranking: dict | None = None,
) -> str:
    """The page; ranking: report.ranking_section.ranking_context, when the spec asks for one."""
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
        effect_level=f"{EFFECT_LEVEL:.0%}",
        power_figure=power_figure,
        design=results.design,
        links=links,
        local_ui=LOCAL_UI,
        store=display_store(results.tracking_uri),
        forest=forest,
        glyph_note=glyph_note,
        toc=with_ranking(TOC) if ranking else TOC,
        small_table=SMALL_TABLE,
        ranking=ranking,
    )


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
    ranking: Ranking | None = None,
) -> ReportPaths:
    """Render and write index.html, report.pdf and the CSV tables under out_dir/<study>/.

    power: results.power_analysis(results), for the section "How many seeds?".
    links: where the experiment, the study run and each run are in the MLflow UI.
    ranking: results.ranking.study_ranking(results), for the section "Ranking".
    """
    from weasyprint import HTML

    folder = Path(out_dir) / results.study
    plots.missing_glyphs.clear()
    forest = forest_figure(results)
    figures = study_figures(results) if not results.runs.empty else []
    power_table, curves = power if power is not None else (pd.DataFrame(), pd.DataFrame())
    power_figure = power_curves_figure(power_table, curves)
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
        ranking_context(ranking, results.spec.arm_names) if ranking is not None else None,
    )
    pdf = HTML(string=html).write_pdf()  # rendered fully in memory before anything is written
    tables = report_tables(results, power_table, ranking)
    write_folder(folder, html, pdf, tables)
    return ReportPaths(
        folder / "index.html", folder / "report.pdf", [folder / name for name in tables]
    )


def power_curves_figure(power_table: pd.DataFrame, curves: pd.DataFrame) -> Figure | None:
    """The figure of "How many seeds?": power against seeds per claim (None without curves)."""
    if curves.empty:
        return None
    return Figure(
        "power",
        "How many seeds?",
        f"Power (the chance that a study of that many paired seeds decides the claim the "
        f"way this study's effect points, under Holm over the family) against the number "
        f"of seeds, from {SIMULATIONS:,} resampled studies each; dashed: "
        f"{TARGET_POWER:.0%}; dotted: this study's n. The curves are at the effect as "
        f"observed; the table's seeds are planned at d_z's lower {EFFECT_LEVEL:.0%} bound, "
        "so they can lie right of where a curve crosses.",
        plots.to_png(plots.power_curves(curves, int(power_table["n"].max()), TARGET_POWER)),
    )


def report_tables(
    results: StudyResults, power_table: pd.DataFrame, ranking: Ranking | None
) -> dict[str, pd.DataFrame]:
    """The CSV files written beside the report, by file name."""
    return {
        "runs.csv": results.runs,
        "verdicts.csv": results.verdicts,
        "secondary.csv": results.secondary,
        "summary.csv": results.summary,
        "wall_clock.csv": results.wall_clock,
        "power.csv": power_table,
        **({"ranking.csv": ranking.pairs} if ranking is not None else {}),
    }


def write_folder(folder: Path, html: str, pdf: bytes, tables: dict[str, pd.DataFrame]) -> None:
    """index.html, report.pdf and the tables, replacing the folder whole (replace_folder):
    a reader never sees half of an old report and half of a new one."""

    def write(staging: Path) -> None:
        for name, frame in tables.items():
            frame.to_csv(staging / name, index=False)
        (staging / "report.pdf").write_bytes(pdf)
        (staging / "index.html").write_text(html, encoding="utf-8")
        for path in staging.iterdir():
            path.chmod(0o644)

    replace_folder(folder, write)
