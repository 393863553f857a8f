"""Every verdict word renders in every front end: terminal, report, conclusion, MLflow, CSV.

The bug this pins: an equivalence verdict crashed `analyze` and `report` (KeyError:
'equivalent') because the terminal's colours were a second, shorter list of verdicts.
"""

import dataclasses
import io

import pandas as pd
import pytest

from mnistlab.cli import display as cli
from mnistlab.report import conclusion, publish
from mnistlab.report.render import render_html
from mnistlab.report.tables import verdict_rows
from mnistlab.stats.verdicts import DECIDED, TONES, Verdict
from tests.report.synthetic import synthetic_results

SAME = {"base": [(500, 0.01, 0.97)] * 7, "var": [(500, 0.0101, 0.971)] * 7}


def test_seven_seeds_of_equal_steps_and_a_margin_are_equivalent_and_render(monkeypatch, capsys):
    # The repro: steps-to-threshold differences all 0, margin = 5.
    results = synthetic_results(
        monkeypatch, [{"metric": "steps_to:0.95", "direction": "lower", "margin": 5}], SAME
    )
    (row,) = results.verdicts.itertuples()
    assert row.verdict == Verdict.EQUIVALENT
    assert row.p_tost_lower == row.p_tost_upper == pytest.approx(1 / 2**7)  # by hand
    cli.print_verdicts(results)
    out = capsys.readouterr().out
    assert "equivalent" in out and "±5" in out and "0.00781" in out


def test_every_verdict_has_a_tone_a_colour_and_a_decided_flag():
    assert set(TONES) == set(Verdict)
    assert {v.tone for v in Verdict} <= set(cli.TONE_COLOURS)
    assert set(Verdict) >= DECIDED and not Verdict.INCONCLUSIVE.decided


@pytest.mark.parametrize("verdict", list(Verdict))
def test_each_verdict_renders_in_every_front_end(verdict, monkeypatch, capsys):
    results = synthetic_results(
        monkeypatch,
        [
            {"metric": "steps_to:0.95", "direction": "lower", "margin": 5},
            {"metric": "test_accuracy", "direction": "higher"},
        ],
        SAME,
    )
    results.claim_verdicts = tuple(
        dataclasses.replace(v, verdict=verdict) for v in results.claim_verdicts
    )
    # terminal
    cli.print_verdicts(results)
    assert str(verdict) in capsys.readouterr().out
    # report table (the PDF is rendered from this same HTML)
    html = render_html(results, [], "", "now")
    assert f'<td class="{verdict.tone}">{verdict}' in html
    assert f'<span class="{verdict.tone}">{str(verdict).capitalize()}</span>' in html
    # conclusion
    sentences = conclusion.verdict_sentences(results)
    assert [v for v, _ in sentences] == [verdict, verdict] and all(t for _, t in sentences)
    # MLflow study run: tags and description
    tags, table = publish.verdict_record(results)
    assert tags["verdict/var/steps_to_0.95"] == str(verdict)
    assert float(tags["var/steps_to_0.95/margin"]) == 5.0
    assert float(tags["var/steps_to_0.95/tost_lo"]) == pytest.approx(1 / 2**7)
    assert table[0]["verdict"] == str(verdict) and table[0]["margin"] == 5.0
    assert f"**{verdict}**" in publish.description(results)
    # CSV: the word survives a round trip and reads back as the same verdict
    buffer = io.StringIO()
    results.verdicts.to_csv(buffer, index=False)
    buffer.seek(0)
    assert {Verdict(v) for v in pd.read_csv(buffer)["verdict"]} == {verdict}
    assert all(row["verdict"].startswith(verdict) for row in verdict_rows(results))


def test_either_and_equivalent_questions_read_as_asked_in_every_front_end(monkeypatch, capsys):
    faster = {"base": [(500, 0.01, 0.97)] * 7, "var": [(400, 0.0101, 0.971)] * 7}
    results = synthetic_results(
        monkeypatch,
        [
            {"metric": "steps_to:0.95", "direction": "either"},
            {"metric": "seconds_per_step", "direction": "equivalent", "margin": 1.05},
        ],
        faster,
    )
    assert results.verdicts["verdict"].tolist() == [Verdict.DIFFERS, Verdict.EQUIVALENT]
    assert results.family_size == 2  # a two-sided test and a TOST
    cli.print_verdicts(results)
    out = capsys.readouterr().out
    assert "differs" in out and "equivalent within ±5% (ratio 1.05)" in out
    html = render_html(results, [], "", "now")
    assert "var differs from base in steps to 95% accuracy" in html
    assert "equivalent within ±5% (ratio 1.05)" in html and "TOST p" in html
    text = publish.description(results)
    assert "**differs**" in text and "**equivalent within ±5% (ratio 1.05)**" in text
    tags, _ = publish.verdict_record(results)
    assert float(tags["var/seconds_per_step/margin"]) == 1.05
    assert {"var/seconds_per_step/ci90_lo", "var/seconds_per_step/p_equiv"} <= set(tags)
