"""The MLflow UI as the README tells a reader to use it, in headless Chromium (a fresh profile:
no view state in local storage) against a real `mlflow server`: the experiment opened by the
printed link shows the study run and every training run (grouped by arm, mnistlab's saved
view), and its Chart view opens on training metrics with a line per arm, not on the verdict
statistics (which are tags). Screenshots go to test-output/mlflow/ (MNISTLAB_TEST_OUTPUT):
experiment.png (the table as the link opens it), chart-view.png (the Chart view),
experiments.png (the home page's list, whose tags hold no view JSON)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from mnistlab import names
from mnistlab.report.publish import mlflow_links, publish_report
from mnistlab.report.render import write_report
from mnistlab.results.evidence import analyse, power_analysis
from mnistlab.store.store import open_store
from tests.cdp import CHROMIUM, with_page
from tests.conftest import MlflowServer

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("MNISTLAB_TEST_OUTPUT", REPO / "test-output")) / "mlflow"
TRAINING = {names.TRAIN_LOSS, names.EVAL_ACCURACY, names.EVAL_LOSS, names.TRAIN_SECONDS}
# Run names in the runs table, with each row's id (MLflow's: group.id for a run in a group).
ROWS = """JSON.stringify([...document.querySelectorAll('[role=row][row-id] a[href*="/runs/"]')]
  .map(a => [a.innerText.trim(), a.closest('[row-id]').getAttribute('row-id')]))"""
CHART_MODE = "document.querySelector('input[name=runs-view-mode][value=CHART]')"
# Chart cards in the Chart view, in the order shown: each card's title, its text (axes and
# legend) and how many of its plotted lines have points.
CHARTS = """JSON.stringify([...document.querySelectorAll(
  '[data-testid="experiment-view-compare-runs-chart-area"] [data-testid="draggable-chart-cards-grid"] > *')]
  .map(card => [card.innerText.split('\\n')[0].trim(), card.innerText,
    [...card.querySelectorAll('path.js-line')].filter(p => (p.getAttribute('d') || '').length > 20).length])
  .filter(([title]) => title))"""


@pytest.fixture
def published_study(tmp_path):
    """A small finished paper study (3 seeds, bench/synthetic_study's runs: what a one-epoch
    run writes) on an `mlflow server`, with its report and verdicts published."""
    sys.path.insert(0, str(REPO / "bench"))
    from synthetic_study import build_study

    server = MlflowServer(tmp_path)
    store = open_store(server.start())
    try:
        build_study(store, str(REPO / "experiments" / "paper.toml"), 3)
        results = analyse(store, "paper")
        paths = write_report(results, None, "", tmp_path / "report", power_analysis(results))
        publish_report(store, results, paths.html.parent)
        yield store, mlflow_links(store, results)
    finally:
        server.stop()
        sys.path.remove(str(REPO / "bench"))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make system-deps` installs it")
def test_the_printed_link_shows_every_run_and_charts_training_per_arm(published_study):
    store, links = published_study
    children = {f"{arm}-s{seed}" for arm in ("cnn2", "cnn3") for seed in range(3)}

    async def look(page):
        await page.open(links.experiment, 1280, 900)  # a fresh profile: nothing remembered
        await page.wait_for(f"JSON.parse({ROWS}).length >= 7", timeout=90)
        rows = json.loads(await page.evaluate(ROWS))
        text = await page.evaluate("document.body.innerText")
        shots = [await page.screenshot(OUTPUT / "experiment.png")]
        # The Chart view, by its toggle beside the table's; tall, so that every card renders.
        await page.evaluate(f"{CHART_MODE}.click()")
        await page.resize(1280, 1800)
        wanted = f"JSON.parse({CHARTS}).filter(c => c[2] > 0).length >= 4"
        await page.wait_for(wanted, timeout=90)
        charts = json.loads(await page.evaluate(CHARTS))
        shots.append(await page.screenshot(OUTPUT / "chart-view.png"))
        # The home page's list of experiments: their tags, but not the view's JSON.
        await page.open(f"{links.base}/#/experiments", 1280, 900)
        await page.wait_for("document.body.innerText.includes('paper')", timeout=60)
        await asyncio.sleep(2)
        home = await page.evaluate("document.body.innerText")
        shots.append(await page.screenshot(OUTPUT / "experiments.png"))
        return rows, text, charts, home, shots

    rows, text, charts, home, shots = asyncio.run(with_page(look))
    assert "sharedViewState" not in home and "groupBy" not in home, home
    # Every run shown, each training run in its arm's group (baseline's first), the study run
    # among the runs without an arm; none folded away.
    names_shown = [name for name, _ in rows]
    assert set(names_shown) == children | {"paper (study)"}, rows
    assert all(row.startswith(f"tag.arm.{name.split('-')[0]}.") for name, row in rows[:6]), rows
    assert names_shown[:6] == sorted(children) and rows[6][1] == f"tag.arm.{links.study_run_id}"
    assert "Group: cnn2" in text and "Group: cnn3" in text and names.RUNS_VIEW_NAME in text
    # The first charts are training metrics; eval_accuracy and train_loss are lines per arm.
    titles = [title for title, _, _ in charts]
    verdict_keys = {key for key in store.client.get_run(links.study_run_id).data.tags if "/" in key}
    assert not set(titles) & verdict_keys, titles
    assert set(titles[:4]) <= TRAINING | {names.EPOCH_SECONDS, names.EPOCH_TRAIN_SECONDS}, titles
    for metric in (names.EVAL_ACCURACY, names.TRAIN_LOSS):
        _, card, lines = next(c for c in charts if c[0] == metric)
        assert lines >= 2 and f"cnn2 ({metric})" in card and f"cnn3 ({metric})" in card, card
    assert not store.client.get_run(links.study_run_id).data.metrics
    for shot in shots:
        assert shot.stat().st_size > 10_000
