"""The report on any screen and in any language, from a synthetic study (no training): a
phone's viewport, tables that scroll in their own box, links into MLflow, small tables whole
on one PDF page, and Chinese arm names drawn with a real font in the figures and the PDF."""

from __future__ import annotations

import re
import subprocess
import warnings

import pytest
from pypdf import PdfReader

from mnistlab.names import RUNS_VIEW_KEY
from mnistlab.report import conclusion, fonts, plots
from mnistlab.report.links import MlflowLinks, display_store
from mnistlab.report.render import write_report
from tests.report.synthetic import synthetic_results

CLAIMS = [
    {"metric": "steps_to:0.95", "direction": "lower", "margin": 5},
    {"metric": "test_accuracy", "direction": "higher"},
    {"metric": "epoch_train_seconds", "direction": "lower"},
]
LINKS = MlflowLinks("http://127.0.0.1:5000", "7", "studyrun")


def values(base="base", var="var"):
    return {
        base: [(500, 0.01, 0.97)] * 8,
        var: [(450 + (i % 3) * 50, 0.0101 + i * 0.0002, 0.971) for i in range(8)],
    }


def report(monkeypatch, tmp_path, arms=("base", "var")):
    results = synthetic_results(monkeypatch, CLAIMS, values(*arms), arms=arms)
    return results, write_report(results, None, "", tmp_path / "reports", links=LINKS)


def squash(text: str) -> str:
    return " ".join(text.split())


def test_the_page_fits_a_phone_links_into_mlflow_and_opens_on_a_forest_plot(monkeypatch, tmp_path):
    results, paths = report(monkeypatch, tmp_path)
    html = paths.html.read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "overflow-x: auto" in html and "position: sticky" in html
    # Every table sits in its own box, which scrolls on a narrow screen.
    assert html.count("<table") == len(re.findall(r'<div class="table[^"]*"><table', html))
    # Contents: every section linked.
    for anchor in re.findall(r'<a href="#([a-z]+)">', html):
        assert f'id="{anchor}"' in html
    assert len(re.findall(r'<a href="#([a-z]+)">', html)) == 11
    # MLflow: the experiment in its Model training view, the study run, every run.
    # The experiment: its runs page in the Model training view, on mnistlab's saved view.
    page = f"#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}"
    assert f'href="http://127.0.0.1:5000/{page}"' in html
    assert 'href="http://127.0.0.1:5000/#/experiments/7/runs/studyrun"' in html
    for run_id in results.runs["run_id"]:
        assert f'href="http://127.0.0.1:5000/#/experiments/7/runs/{run_id}"' in html
    # The forest plot comes before the verdict table.
    assert html.index('id="forest"') < html.index('<div class="table keep verdicts">')
    assert "/work/" not in html and str(tmp_path) not in html


def test_a_local_store_is_named_relative_to_the_project(tmp_path):
    assert display_store(f"sqlite:///{tmp_path}/mlflow.db", tmp_path) == "sqlite:///mlflow.db"
    outside = display_store("sqlite:////elsewhere/x.db", tmp_path)
    assert outside.startswith("sqlite:///…/x.db") and "/elsewhere" not in outside
    assert display_store("http://host:5000", tmp_path) == "http://host:5000"


def test_a_small_table_is_never_split_across_pdf_pages(monkeypatch, tmp_path):
    results, paths = report(monkeypatch, tmp_path)
    pages = [squash(page.extract_text()) for page in PdfReader(paths.pdf).pages]
    checklist = [key for key, _ in conclusion.checklist(results)]
    assert len(checklist) < 10
    firsts = [" ".join(key.split()[:1]) for key in checklist]
    assert any(all(word in page for word in firsts) for page in pages), checklist
    # The verdict table (3 claims) and its heading row start on one page.
    starts = [i for i, page in enumerate(pages) if "var against base" in page]
    assert any(
        all(claim in pages[i] for claim in ("fewer steps", "higher final test accuracy"))
        for i in starts
    )


def cjk_font_installed() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return False
    return bool(out.strip())


@pytest.mark.skipif(
    not cjk_font_installed(), reason="no CJK font installed: `make system-deps` installs one"
)
def test_chinese_arm_names_are_drawn_with_a_real_font_in_figures_and_pdf(
    monkeypatch, tmp_path, caplog
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 'Glyph missing' warning fails the test
        results, paths = report(monkeypatch, tmp_path, arms=("基线", "三层"))
    assert plots.missing_glyphs == set()
    assert not [r for r in caplog.records if "glyph" in r.getMessage().lower()]
    html = paths.html.read_text()
    assert "基线" in html and "have no glyph" not in html
    reader = PdfReader(paths.pdf)
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"].get_object().get("/Font", {}).values():
            fonts.add(str(font.get_object().get("/BaseFont")))
    assert any("CJK" in f for f in fonts), fonts
    assert "基线" in "".join(page.extract_text() for page in reader.pages)


def test_a_character_no_font_has_is_named_once(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "undrawable", lambda text: {"\U00013000"})
    _, paths = report(monkeypatch, tmp_path)
    assert paths.html.read_text().count("have no glyph in the fonts installed here") == 1


def test_the_forest_plots_ratio_axis_is_logarithmic_with_ratio_labels():
    from mnistlab.report.plots import forest

    row = dict(kind="ratio", margin=float("nan"), tone="supported", verdict="supported")
    figure = forest(
        [
            {**row, "claim": "time", "variant": "a", "estimate": 1.25, "low": 1.1, "high": 1.6},
            {**row, "claim": "time", "variant": "b", "estimate": 0.8, "low": 0.7, "high": 0.95},
        ]
    )
    figure.canvas.draw()
    (ax,) = figure.axes
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(text.endswith("×") for text in labels) and "1×" in labels
    # 0.8x and 1.25x are the same distance from 1x on the page: as far from equal either way.
    to_pixels = ax.transData.transform
    left, one, right = (to_pixels((x, 0))[0] for x in (0.8, 1.0, 1.25))
    assert one - left == pytest.approx(right - one, rel=1e-6)
