"""The ranking in every front end: `analyze`'s tables, the report's section with its figure, the
study run's tags, ranking.json and description; from synthetic runs through the real analysis."""

import json

import numpy as np
import pytest

from mnistlab.cli.ranking_display import print_ranking
from mnistlab.report.ranking import markdown, ranking_record
from mnistlab.report.ranking_section import ranking_context
from mnistlab.report.render import render_html, write_report
from mnistlab.results.ranking import ranking_gap, study_ranking
from mnistlab.stats.verdicts import Verdict
from tests.report.synthetic import synthetic_results

CLAIMS = [{"metric": "test_accuracy", "direction": "higher"}]
RANKING = {"ranking": {"metric": "test_accuracy", "better": "higher"}}


def three_arms(seeds: int = 10) -> dict[str, list[tuple]]:
    """'best' beats the others on every seed; 'base' and 'twin' cannot be told apart."""
    rng = np.random.default_rng(0)
    level = rng.normal(0.97, 0.002, seeds)
    return {
        "base": [(500, 0.01, a) for a in level + rng.normal(0, 0.0005, seeds)],
        "twin": [(500, 0.01, a) for a in level + rng.normal(0, 0.0005, seeds)],
        "best": [(450, 0.01, a) for a in level + 0.004 + rng.normal(0, 0.0005, seeds)],
    }


@pytest.fixture
def ranked(monkeypatch):
    results = synthetic_results(monkeypatch, CLAIMS, three_arms(), spec_keys=RANKING)
    return results, study_ranking(results)


def test_analyze_prints_the_ranking_with_every_pair_and_friedman(ranked, capsys):
    results, ranking = ranked
    assert ranking.arms[0] == "best" and ranking.groups == [ranking.arms[1:]]
    print_ranking(ranking)
    out = " ".join(capsys.readouterr().out.split())
    assert "Ranking on final test accuracy (higher is better), 10 seeds as blocks" in out
    assert "differs: best ranks above base" in out and "differs: best ranks above twin" in out
    assert "no difference shown" in out and "Friedman" in out and "10 of 10 seeds" in out


def test_the_report_has_a_ranking_section_with_its_figure_and_table(ranked, tmp_path):
    results, ranking = ranked
    html = render_html(
        results, [], "", "now", ranking=ranking_context(ranking, results.spec.arm_names)
    )
    assert '<h3 id="ranking">' in html and 'href="#ranking"' in html
    assert 'id="ranking-figure"' in html and "data:image/png;base64," in html
    assert f'<td class="supported">differs: best ranks above {ranking.arms[1]}' in html
    paths = write_report(results, None, "", tmp_path / "reports", ranking=ranking)
    assert (paths.html.parent / "ranking.csv").is_file()
    # without a ranking asked for, the page has none
    plain = render_html(results, [], "", "now")
    assert 'id="ranking"' not in plain and 'href="#ranking"' not in plain


def test_the_study_run_carries_the_ranking(ranked):
    results, ranking = ranked
    tags, document = ranking_record(ranking)
    assert tags["ranking/order"].startswith("best, ")
    assert float(tags["ranking/mean_rank/best"]) == pytest.approx(1.0)
    assert float(tags["ranking/friedman_p"]) == pytest.approx(ranking.friedman_p)
    assert len(document["pairs"]) == 3
    json.dumps(document, allow_nan=False)  # strict JSON: no NaN anywhere
    text = "\n".join(markdown(ranking))
    assert "| best vs base |" in text or "| best vs twin |" in text
    assert "ranking.json" in text


@pytest.mark.parametrize("verdict", [Verdict.DIFFERS, Verdict.NO_DIFFERENCE])
def test_each_pair_verdict_renders_in_every_front_end(ranked, verdict, capsys):
    results, ranking = ranked
    ranking.pairs["verdict"] = str(verdict)
    print_ranking(ranking)
    assert str(verdict) in capsys.readouterr().out
    html = render_html(
        results, [], "", "now", ranking=ranking_context(ranking, results.spec.arm_names)
    )
    assert f'<td class="{verdict.tone}">{verdict}' in html
    assert str(verdict) in "\n".join(markdown(ranking))
    assert {p["verdict"] for p in ranking_record(ranking)[1]["pairs"]} == {str(verdict)}


def test_a_ranking_asked_for_but_with_two_arms_of_runs_says_why(monkeypatch, capsys):
    values = three_arms()
    values["best"] = values["best"][:0]  # no runs of one arm
    del values["best"]
    results = synthetic_results(
        monkeypatch, CLAIMS, values, arms=("base", "twin", "best"), spec_keys=RANKING
    )
    assert study_ranking(results) is None
    print_ranking(None, ranking_gap(results))
    out = " ".join(capsys.readouterr().out.split())
    assert "only 2 arm(s) have usable runs (base, twin): a ranking needs 3" in out
