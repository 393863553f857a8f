"""What a study's verdicts look like to a user, pinned: verdicts.csv, `analyze`'s terminal
tables, the conclusion and the report's HTML, for a fixed and an adaptive synthetic study.

Written before the verdicts became ClaimVerdict dataclasses (issue 28), so that change (and any
later refactor) is shown to keep every byte. The digests are of outputs built through the real
analysis code from tiny synthetic histories; a change meant to alter what a user sees updates
them, after reading the new output (print it with `pytest -s -k pinned`).
"""

from __future__ import annotations

import hashlib
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


def digests(texts: dict[str, str]) -> dict[str, str]:
    return {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in texts.items()}


FIXED = {
    "verdicts.csv": "deb83588a4677f95",
    "analyze": "112bc32286df8b04",
    "conclusion": "dbea521208295d11",
    "mlflow": "3f4090cd5cdadb79",
    "html": "b955297a4e8ea7dc",
}
SEQUENTIAL = {
    "verdicts.csv": "bc7ac6f5fb11de5f",
    "analyze": "38d68cfa96460b43",
    "conclusion": "815276eba723c946",
    "mlflow": "1dbfa116921cb606",
    "html": "1ac16264941c2aae",
}


@pytest.mark.parametrize(
    ("spec_keys", "expected", "columns"),
    [({}, FIXED, COLUMNS), (ADAPTIVE, SEQUENTIAL, COLUMNS + SEQUENTIAL_COLUMNS)],
    ids=["fixed", "adaptive"],
)
def test_pinned_verdict_outputs_keep_every_byte(monkeypatch, capsys, spec_keys, expected, columns):
    results = synthetic_results(
        monkeypatch, CLAIMS, {"base": BASE, "var": VARIANT}, spec_keys=spec_keys
    )
    texts = outputs(results, capsys)
    print(*texts.values(), sep="\n")  # what the digests are of, for `pytest -s`
    assert texts["verdicts.csv"].splitlines()[0] == columns
    assert digests(texts) == expected


def test_the_report_renders_the_same_bytes_twice(monkeypatch):
    results = synthetic_results(monkeypatch, CLAIMS, {"base": BASE, "var": VARIANT})
    assert render_html(results, [], "", "now") == render_html(results, [], "", "now")
