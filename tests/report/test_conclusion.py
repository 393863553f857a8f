"""The report's Conclusion on a study whose answer is known by construction: runs written to
the store by hand, so every number is chosen."""

import numpy as np
import pytest
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.report.clock import clock_sentences, papers_question
from mnistlab.report.conclusion import companion_words, verdict_sentences
from mnistlab.report.render import write_report
from mnistlab.results.evidence import analyse, power_analysis
from mnistlab.spec.parse import parse_spec
from mnistlab.spec.record import to_record
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import TrackedRun
from tests.conftest import SECTIONS
from tests.report.synthetic import synthetic_results

SETTINGS = {"train_size": 1000, "batch_size": 50, "eval_every": 2, "eval_subset": 100}
# Steps to 0.9 and 0.95, train seconds per step, final accuracy, loss noise per arm.
TRUTH = {"cnn2": (8, 14, 0.010, 0.950, 0.02), "cnn3": (4, 8, 0.030, 0.970, 0.2)}


def write_study(store_uri, tmp_path, seeds=8):
    spec = parse_spec(
        {
            "name": "known",
            "models": ["cnn2", "cnn3"],
            "seeds": seeds,
            "thresholds": [0.9, 0.95],
            "settings": SETTINGS,
        },
        tmp_path / "known.toml",
    )
    store = open_store(store_uri)
    experiment_id = store.experiment_id("known")
    store.record_spec(experiment_id, to_record(spec))
    rng = np.random.default_rng(0)
    for planned in spec.planned_runs():
        to_90, to_95, per_step, accuracy, noise = TRUTH[planned.arm]
        seed = planned.config.seed
        tags = {
            "model": planned.arm,
            "seed": str(seed),
            "config_hash": planned.config.config_hash(),
        }
        with TrackedRun(store, experiment_id, planned.name, {}, tags) as run:
            steps = list(range(0, 20, 2))
            jitter = 1 + 0.05 * rng.random()
            curve = [0.5 if s < to_90 else 0.92 if s < to_95 else 0.96 for s in steps]
            run.log("eval_accuracy", curve, steps)
            run.log("train_seconds", [s * per_step * jitter for s in steps], steps)
            losses = np.exp(-np.arange(20) / 8) * np.exp(rng.normal(0, noise, 20))
            run.log("train_loss", losses.tolist(), range(20))
            run.log("epoch_train_seconds", [20 * per_step * jitter], [0])
            run.log("test_accuracy", [accuracy + 0.001 * seed + 0.0005 * rng.random()], [19])
    return store


def test_the_conclusion_answers_the_papers_question_with_the_constructed_numbers(
    tmp_path, store_uri
):
    store = write_study(store_uri, tmp_path)
    results = analyse(store, "known")
    assert results.verdicts["verdict"].tolist() == ["supported"] * 3
    clock = results.wall_clock.set_index(["arm", "threshold"])
    assert (
        clock.loc[("cnn2", 0.9), "median_steps"] == 8
        and clock.loc[("cnn3", 0.9), "median_steps"] == 4
    )
    # 4 steps at 30 ms against 8 at 10 ms: cnn3 needs 1.5x the train time to 90%.
    ratio = results.wall_clock_comparisons.set_index("claim").loc["seconds_to:0.9", "estimate"]
    assert ratio == pytest.approx(1.5, rel=0.05)
    html = write_report(results, None, "", tmp_path / "r", power_analysis(results)).html.read_text()
    text = " ".join(html.split())
    assert [s for s in SECTIONS if s in html] == SECTIONS
    assert "cnn3's fewer steps do not outweigh its slower steps at 90%, 95%" in text
    assert (
        "After the same number of steps (the whole run), cnn3's test accuracy is 2 points" in text
    )
    # 18 steps of cnn2 take 0.18 s, in which cnn3 (30 ms a step) reaches only step 6 (0.92).
    assert (
        "depends on what is held equal: at equal steps it buys accuracy, at an equal training "
        "time it does not; nor does it buy speed to 90%, 95%." in text
    )
    assert (
        text.index("1. Conclusion")
        < text.index("The paper's question.")
        < text.index("2. The question")
    )
    assert "Total compute</th><td>16 runs (16 finished)" in text


def test_power_on_a_three_seed_pilot_says_it_is_rough(tmp_path, store_uri):
    write_study(store_uri, tmp_path, seeds=3)
    result = CliRunner().invoke(app, ["power", "known", "--tracking-uri", store_uri])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "seeds needed for 80% power" in text and "Only 3 paired seeds" in text


# Sentence shapes of the clock, the paper's question and the companion measure, on synthetic
# studies (tests.report.synthetic) whose numbers are chosen: 8 seeds, cnn2 against cnn3.
CLAIMS = [
    {"metric": "steps_to:0.95", "direction": "lower"},
    {"metric": "log_loss_spread", "direction": "higher"},
]


def paper_study(monkeypatch, cnn2, cnn3, **kwargs):
    return synthetic_results(
        monkeypatch,
        CLAIMS,
        {"cnn2": cnn2, "cnn3": cnn3},
        arms=("cnn2", "cnn3"),
        models=("cnn2", "cnn3"),
        **kwargs,
    )


def seeds(steps, seconds_per_step, accuracy, last_eval=None, n=8, gain=0.0003):
    """Per seed (steps to 95%, s per step, test accuracy[, last evaluation accuracy])."""
    return [
        (steps + 10 * i, seconds_per_step * (1 + 0.01 * i), accuracy + gain * i)
        + (() if last_eval is None else (last_eval(i),))
        for i in range(n)
    ]


def test_the_clock_gives_each_arms_seconds_and_the_ratio_when_every_run_got_there(monkeypatch):
    # cnn3: 300-370 steps at 3 ms; cnn2: 400-470 at 2 ms. Evaluations every 50 steps, so cnn3
    # is first seen past 95% at step 350 + 50 * (i >= 5) and cnn2 at 400 + 50 * (i >= 1).
    results = paper_study(monkeypatch, seeds(400, 0.002, 0.98), seeds(300, 0.003, 0.985))
    (to_95,) = [s for s in clock_sentences(results) if s.startswith("To 95%")]
    times = results.wall_clock.set_index(["arm", "threshold"])
    cnn3, cnn2 = times.loc[("cnn3", 0.95)], times.loc[("cnn2", 0.95)]
    assert to_95.startswith(
        f"To 95%: cnn3 {cnn3.median_seconds:.2g} s [{cnn3.low:.2g}, {cnn3.high:.2g}] of "
        f"training, cnn2 {cnn2.median_seconds:.2g} s [{cnn2.low:.2g}, {cnn2.high:.2g}] of "
        "training (medians, 95% CI); cnn3/cnn2 "
    )
    row = results.wall_clock_comparisons.set_index("claim").loc["seconds_to:0.95"]
    assert f"{row.estimate:.4g}×, 95% CI [{row.ci_low:.4g}×, {row.ci_high:.4g}×]" in to_95
    assert row.ci_low > 1 and to_95.endswith("cnn3 needs more training time to get there.")


def test_a_clock_comparison_with_runs_that_never_got_there_gives_bounds_not_a_ratio(
    monkeypatch,
):
    # cnn2's last evaluation is 96.5% on seeds 0-4 (never 97%), 97.5% on 5-7.
    cnn2 = seeds(400, 0.002, 0.98, last_eval=lambda i: 0.965 if i < 5 else 0.975)
    cnn3 = seeds(300, 0.003, 0.985, last_eval=lambda i: 0.975 + 0.001 * i)
    results = paper_study(monkeypatch, cnn2, cnn3)
    (to_97,) = [s for s in clock_sentences(results) if s.startswith("To 97%")]
    assert "cnn2 did not get there on 5 of 8 seeds (median not reached)" in to_97
    assert "no time ratio, since 5 of 8 pairs hold a run that never got there" in to_97
    assert "the median per-seed ratio is at most" in to_97 and "×," not in to_97.split(":")[1]
    # Two arms that never got there: nothing is bounded, and no medians are claimed.
    (to_98,) = [s for s in clock_sentences(results) if s.startswith("To 98%")]
    assert "(medians, 95% CI)" not in to_98 and "has no bound" in to_98


def test_the_papers_question_says_when_equal_steps_and_equal_time_disagree(monkeypatch):
    # cnn3 ends 0.5 points higher after the same steps, but at 3 ms a step it has trained only
    # 2/3 of its steps when cnn2's run ends: lower on the evaluation subset at that budget.
    cnn2 = seeds(400, 0.002, 0.98, last_eval=lambda i: 0.97)
    cnn3 = seeds(300, 0.003, 0.985, last_eval=lambda i: 0.975, gain=0.0004)
    results = paper_study(monkeypatch, cnn2, cnn3)
    budget = results.equal_budget.iloc[0]
    assert budget["lower"] == 8 and budget["difference"] < 0
    text = papers_question(results)
    assert "After the same number of steps (the whole run), cnn3's test accuracy is" in text
    assert "at an equal training-time budget" in text and "0 seeds higher, 8 lower" in text
    assert "depends on what is held equal: at equal steps it buys accuracy, at an equal" in text


def test_the_papers_question_says_so_when_both_budgets_agree(monkeypatch):
    # Same seconds per step: equal time is equal steps, and cnn3 is ahead at both.
    cnn2 = seeds(400, 0.002, 0.98, last_eval=lambda i: 0.97)
    cnn3 = seeds(300, 0.002, 0.985, last_eval=lambda i: 0.975 + 0.001 * i, gain=0.0004)
    text = papers_question(paper_study(monkeypatch, cnn2, cnn3))
    assert "0 lower, 0 tied" in text and "pays for itself on the clock at 90%, 95%" in text
    assert "does not follow: it buys accuracy at equal steps and at an equal training time." in text


def test_the_equal_budget_accuracy_is_read_at_the_quicker_runs_total_seconds(monkeypatch):
    """By hand, seed 0: cnn2 ends at 1000 steps x 2 ms = 2 s; cnn3 (3 ms) has then trained
    666 steps, its last evaluation at 650, where it stood at 0.95 + 0.025 * 350 / 700."""
    cnn2 = seeds(400, 0.002, 0.98, last_eval=lambda i: 0.97, n=1) * 2
    cnn3 = seeds(300, 0.003, 0.985, last_eval=lambda i: 0.975, n=1) * 2
    budget = paper_study(monkeypatch, cnn2, cnn3).equal_budget.iloc[0]
    assert budget["budget_seconds"] == pytest.approx(2.0)
    assert budget["baseline_mean"] == pytest.approx(0.97)
    assert budget["variant_mean"] == pytest.approx(0.95 + 0.025 * 350 / 700)


@pytest.mark.parametrize(
    "cnn3_loss, words",
    [
        (
            (0.3, 0.2),
            "but by the paper's own measure, the raw rolling SD of the train loss, cnn3's "
            "is smaller on 8 of 8 seeds",
        ),
        (
            (1.0, 0.2),
            "the paper's own measure, the raw rolling SD of the train loss, agrees: "
            "cnn3's is larger on 8 of 8 seeds",
        ),
    ],
)
def test_the_noisier_loss_sentence_says_what_the_papers_measure_says_in_the_same_sentence(
    monkeypatch, cnn3_loss, words
):
    # Noise 0.2 against 0.1 in log terms; at 0.3 of the level, the raw SD is 0.06 against 0.1.
    results = paper_study(
        monkeypatch, seeds(400, 0.002, 0.98), seeds(300, 0.003, 0.985), loss={"cnn3": cnn3_loss}
    )
    sentences = [text for _, text in verdict_sentences(results)]
    (noisier,) = [s for s in sentences if "noisier training loss" in s]
    assert noisier.startswith("cnn3 has a noisier training loss than cnn2: ")
    assert words in noisier and ". " not in noisier  # one sentence
    if "but by" in noisier:
        assert noisier.endswith("the two measures of this claim disagree.")


def test_a_noisier_loss_claim_the_papers_measure_cannot_separate_says_so():
    from types import SimpleNamespace

    import pandas as pd

    row = SimpleNamespace(claim="log_loss_spread", variant="v", baseline="b", direction=1)
    runs = pd.DataFrame(
        {"seed": [0, 1, 0, 1], "arm": ["b", "b", "v", "v"], "raw_loss_sd": [1.0, 2, 1.5, 1.8]}
    )
    secondary = pd.DataFrame(
        [
            dict(
                variant="v",
                measure="raw_loss_sd",
                n=2,
                difference=0.15,
                ci_low=-1.0,
                ci_high=1.3,
                p_value=0.5,
            )
        ]
    )
    words = companion_words(SimpleNamespace(secondary=secondary, runs=runs), row)
    assert words.startswith(
        "the paper's own measure, the raw rolling SD of the train loss, "
        "does not separate them: v's is larger on 1 of 2 seeds"
    )


def test_power_refuses_an_effect_that_means_nothing(tmp_path, store_uri):
    write_study(store_uri, tmp_path, seeds=3)
    for claim, effect, phrase in [
        ("log_loss_spread", "nan", "--effect nan is not a finite number"),
        ("log_loss_spread", "inf", "--effect inf is not a finite number"),
        ("log_loss_spread", "0", "--effect 0 is no effect at all"),
        ("epoch_train_seconds", "1", "--effect 1 is no effect at all"),
        ("epoch_train_seconds", "-2", "--effect -2 is not a ratio"),
    ]:
        arguments = ["power", "known", "--tracking-uri", store_uri, "--claim", claim]
        result = CliRunner().invoke(app, [*arguments, "--effect", effect])
        assert result.exit_code == 2, result.output
        assert phrase in " ".join(result.output.split()) and "Traceback" not in result.output


def test_total_compute_counts_this_specs_runs_and_names_a_replaced_specs_apart():
    from types import SimpleNamespace

    import pandas as pd

    from mnistlab import names
    from mnistlab.report.conclusion import total_compute

    every = pd.DataFrame(
        {
            names.OF_SPEC: [True, True, True, False, False],
            "status": ["FINISHED", "FINISHED", "KILLED", "FINISHED", "FINISHED"],
            "train_seconds": [60.0, 60.0, 30.0, 120.0, 120.0],
        }
    )
    text = total_compute(SimpleNamespace(all_runs=every))
    assert text.startswith("3 runs (2 finished, 1 killed), about 2.5 train-minutes in all")
    assert "besides, 2 run(s) of an earlier spec" in text and "about 4 train-minutes" in text
    alone = total_compute(SimpleNamespace(all_runs=every[every[names.OF_SPEC]]))
    assert "besides" not in alone
