"""The MLflow UI as the README tells a reader to use it, in headless Chromium against a real
`mlflow server`: the experiment opened by the report's link shows the study run with its
training runs nested under it, and the Chart view's first charts are training metrics, not
the verdict statistics (which are tags). Screenshots go to test-output/mlflow/
(MNISTLAB_TEST_OUTPUT)."""

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
# Run names in the runs table, with where each starts on the screen (indentation = nesting).
ROWS = """JSON.stringify([...document.querySelectorAll('[role=row][row-id] a[href*="/runs/"]')]
  .map(a => [a.innerText.trim(), Math.round(a.getBoundingClientRect().left)]))"""
# Chart cards in the Chart view, in the order shown: each card's title.
CHARTS = """JSON.stringify([...document.querySelectorAll(
  '[data-testid="experiment-view-compare-runs-chart-area"] [data-testid="draggable-chart-cards-grid"] > *')]
  .map(card => card.innerText.split('\\n')[0].trim()).filter(Boolean))"""


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
def test_the_experiment_shows_the_study_run_with_its_runs_and_charts_of_training(
    published_study,
):
    store, links = published_study
    study_run = links.study_run_id

    async def look(page):
        await page.open(links.experiment, 1280, 900)
        expander = f"document.querySelector('[row-id=\"{study_run}\"] button')"
        await page.wait_for(expander, timeout=90)
        shots = [await page.screenshot(OUTPUT / "experiment-collapsed.png")]
        collapsed = json.loads(await page.evaluate(ROWS))
        await page.evaluate(f"{expander}.click()")
        await page.wait_for(f"{ROWS}.includes('cnn3-s2')")
        expanded = json.loads(await page.evaluate(ROWS))
        shots.append(await page.screenshot(OUTPUT / "experiment-expanded.png"))
        # The Chart view, as the README says: the toggle beside the table's.
        await page.open(links.experiment.replace("?", "/runs?") + "&compareRunsMode=CHART")
        await page.wait_for(f"JSON.parse({CHARTS}).length >= 2", timeout=90)
        charts = json.loads(await page.evaluate(CHARTS))
        shots.append(await page.screenshot(OUTPUT / "chart-view.png"))
        return collapsed, expanded, charts, shots

    collapsed, expanded, charts, shots = asyncio.run(with_page(look))
    names_shown = [name for name, _ in expanded]
    assert [name for name, _ in collapsed] == ["paper (study)"]  # the children fold under it
    children = {f"{arm}-s{seed}" for arm in ("cnn2", "cnn3") for seed in range(3)}
    assert names_shown[0] == "paper (study)" and set(names_shown[1:]) == children
    study_left = expanded[0][1]
    assert all(left > study_left for _, left in expanded[1:]), expanded  # nested: indented
    # The first charts are the training runs' metrics; no verdict statistic is a metric.
    verdict_keys = {key for key in store.client.get_run(links.study_run_id).data.tags if "/" in key}
    assert charts and not set(charts) & verdict_keys, charts
    assert set(charts[:4]) <= TRAINING | {names.EPOCH_SECONDS, names.EPOCH_TRAIN_SECONDS}, charts
    assert not store.client.get_run(links.study_run_id).data.metrics
    for shot in shots:
        assert shot.stat().st_size > 10_000
