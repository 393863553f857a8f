"""Which runs are a study's evidence, and the notes that name what is missing and why."""

from mlflow import MlflowClient

from mnistlab.results.evidence import analyse
from mnistlab.spec.parse import parse_spec
from mnistlab.store.store import open_store
from mnistlab.study.run import run_study
from tests.conftest import (
    TINY_SETTINGS,
    two_arm_spec,
)


def test_an_arm_whose_runs_all_failed_is_named_with_how_to_retry(tmp_path, tiny_mnist, store_uri):
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": TINY_SETTINGS},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    client = MlflowClient(store_uri)
    for run in client.search_runs([client.get_experiment_by_name("tiny").experiment_id]):
        if run.data.tags.get("model") == "cnn3":
            client.set_terminated(run.info.run_id, "FAILED")
    notes = " ".join(analyse(open_store(store_uri), "tiny").notes)
    assert "Arm cnn3 has no usable runs: cnn3-s" in notes and "FAILED" in notes
    assert "mnistlab study" in notes and "Add a second" not in notes


def test_too_short_runs_are_blamed_on_their_length_not_on_the_seeds(
    tmp_path, tiny_mnist, store_uri
):
    short = {
        **TINY_SETTINGS,
        "batch_size": 50,
        "eval_every": 1,
    }  # 4 steps: no loss noise to measure
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": short},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    notes = " ".join(analyse(open_store(store_uri), "tiny").notes)
    assert "log_loss_spread could not be measured" in notes and "Lengthen the runs" in notes


def test_timing_claims_use_only_runs_that_ran_alone(tmp_path, tiny_mnist, store_uri):
    spec = two_arm_spec(tmp_path)
    run_study(spec, store_uri, data=tiny_mnist)
    store = open_store(store_uri)
    alone = analyse(store, "tiny")
    shared = next(r for r in alone.runs.itertuples() if r.run_name == "base-s0")
    store.set_run_tags(shared.run_id, {"contended": "true"})
    results = analyse(store, "tiny")
    n = dict(zip(results.verdicts["claim"], results.verdicts["n"], strict=True))
    assert n == {"steps_to:0.2": 2, "epoch_train_seconds": 1, "log_loss_spread": 2}
    assert any(
        "base-s0" in note and "left out of every timing claim" in note for note in results.notes
    )
    assert not any("left out" in note for note in alone.notes)


def test_contended_runs_leave_a_censored_timing_claim_their_clean_seeds(monkeypatch):
    """A contended run's times are blanked but its reached flags are not: the two must be
    paired on the same seeds (this crashed analyze with a broadcast error), and the claim is
    tested on the seeds whose two runs both ran alone."""
    from tests.report.synthetic import synthetic_results

    base = [(400 + 50 * (s % 3), 0.01, 0.97) for s in range(8)]
    var = [(300 + 50 * (s % 2), 0.012, 0.975) for s in range(7)] + [(2000, 0.012, 0.975)]
    results = synthetic_results(
        monkeypatch,
        [{"metric": "seconds_to:0.95", "direction": "lower"}],
        {"base": base, "var": var},
        contended={"var-s0", "base-s3"},
    )
    row = results.verdicts.iloc[0]
    assert row["n"] == 6  # seeds 0 and 3 left out
    assert row["censored_pairs"] == 1  # seed 7: var never reached 95% in its 1,000 steps
    # Censored at 12 s, past the baseline's time: known to be the slower, a loss, not unknown.
    assert row["wins"] == 5 and row["unknown_signs"] == 0 and row["informative"] == 6
    assert any("shared this machine" in note for note in results.notes)
