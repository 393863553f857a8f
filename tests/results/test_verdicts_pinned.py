"""What a study's verdicts look like to a user: verdicts.csv's columns (a file users read
with their own code), and every front end rendered from the same ClaimVerdicts, for a fixed
and an adaptive synthetic study.

The ClaimVerdict change (issue 28) was checked byte for byte against the commit before it
(analyze's output, verdicts.csv and the report's HTML, on the same store); the digests used
for that are not kept as a test, since any intended change of wording would break them.
"""

from __future__ import annotations

import io

import pytest

from mnistlab.cli import display as cli
from mnistlab.report import conclusion, publish
from mnistlab.report.render import render_html
from tests.report.synthetic import synthetic_results

CLAIMS = [
    {"metric": "steps_to:0.95", "direction": "lower", "margin": 50},
    {"metric": "test_accuracy", "direction": "higher"},
    {"metric": "seconds_per_step", "direction": "equivalent", "margin": 1.05},
]
BASE = [(500 + 10 * s, 0.010 + 0.0001 * s, 0.970 + 0.001 * (s % 3)) for s in range(8)]
# The variant reaches 95% sooner, except on seed 7 where it never does (a censored pair).
VARIANT = [(420 + 7 * s, 0.0102 + 0.0001 * s, 0.972 + 0.001 * (s % 4)) for s in range(7)]
VARIANT.append((2000, 0.0108, 0.975))
ADAPTIVE = {"adaptive": {"max_seeds": 12, "block": 4}}

COLUMNS = (
    "variant,baseline,claim,statement,metric,n,baseline_mean,variant_mean,estimate_kind,"
    "estimate,ci_low,ci_high,confidence,interval_note,median_low,median_high,p_value,"
    "effect_size,magnitude,p_beats,p_beats_low,p_beats_high,wins,ties,unknown_signs,"
    "beats_words,informative,censored_pairs,test,margin,p_equivalence,p_tost_lower,"
    "p_tost_upper,ci90_low,ci90_high,equivalence_confidence,direction,question,evidence,"
    "p_holm,p_equivalence_holm,verdict,note"
)
SEQUENTIAL_COLUMNS = ",look,seeds_at_look,alpha_spent,alpha_nominal,p_sequential"


def outputs(results, capsys) -> dict[str, str]:
    """Every text a user sees of the verdicts, by where it is seen."""
    buffer = io.StringIO()
    results.verdicts.to_csv(buffer, index=False)
    cli.print_verdicts(results)
    tags, table = publish.verdict_record(results)
    return {
        "verdicts.csv": buffer.getvalue(),
        "analyze": capsys.readouterr().out,
        "conclusion": repr(conclusion.verdict_sentences(results)),
        "mlflow": publish.description(results) + repr(sorted(tags.items())) + repr(table),
        "html": render_html(results, [], "", "now"),
    }


@pytest.mark.parametrize(
    ("spec_keys", "columns"),
    [({}, COLUMNS), (ADAPTIVE, COLUMNS + SEQUENTIAL_COLUMNS)],
    ids=["fixed", "adaptive"],
)
def test_every_front_end_renders_the_verdicts_and_the_csv_keeps_its_columns(
    monkeypatch, capsys, spec_keys, columns
):
    results = synthetic_results(
        monkeypatch, CLAIMS, {"base": BASE, "var": VARIANT}, spec_keys=spec_keys
    )
    texts = outputs(results, capsys)
    assert texts["verdicts.csv"].splitlines()[0] == columns
    for verdict in results.claim_verdicts:  # each claim's verdict word, wherever it is shown
        for where, text in texts.items():
            assert str(verdict.verdict) in text.lower() or where == "conclusion", where


def test_the_report_renders_the_same_bytes_twice(monkeypatch):
    results = synthetic_results(monkeypatch, CLAIMS, {"base": BASE, "var": VARIANT})
    assert render_html(results, [], "", "now") == render_html(results, [], "", "now")
