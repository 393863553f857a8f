"""Each caveat note, on tiny tables: present exactly when its condition holds, naming the fix."""

from types import SimpleNamespace

import pandas as pd

from mnistlab.results import notes


def runs(**columns):
    base = {"run_name": ["a-0", "b-0"], "contended": [False, False], "diverged": [False, False]}
    base.update({"threads": ["1", "1"], "device": ["cpu", "cpu"]})
    return pd.DataFrame({**base, **columns})


def test_contended_runs_are_named_with_the_fix():
    assert notes.contended(runs()) == ""
    note = notes.contended(runs(contended=[False, True]))
    assert note.startswith("1 run(s) shared this machine") and "(b-0)" in note
    assert "--workers 1" in note


def test_diverged_runs_are_named_and_kept():
    assert notes.diverged(runs()) == ""
    assert "a-0" in notes.diverged(runs(diverged=[True, False]))


def test_mixed_thread_counts_and_devices_are_listed():
    assert notes.mixed_settings(runs()) == ""
    note = notes.mixed_settings(runs(threads=["1", "4"], device=["cpu", "cuda"]))
    assert "thread counts (1, 4) and devices (cpu, cuda)" in note and "--strict" in note


def verdicts(n, informative):
    return pd.DataFrame(
        {
            "variant": ["v"],
            "claim": ["test_accuracy"],
            "n": [n],
            "informative": [informative],
            "p_value": [0.5],
            "p_equivalence": [float("nan")],
        }
    )


def test_too_few_seeds_and_tied_seeds_follow_the_exact_tests_floor():
    # One test: 2 / 2**n < 0.05 needs n = 6 (2 / 32 = 0.0625 at n = 5).
    assert "n = 5" in notes.too_few_seeds(verdicts(5, 5))
    assert notes.too_few_seeds(verdicts(6, 6)) == ""
    assert notes.tied_seeds(verdicts(6, 6)) == []
    (tied,) = notes.tied_seeds(verdicts(8, 4))
    assert "4 tied" in tied and "needs 2 more untied seed(s)" in tied


def test_unmeasured_claims_are_listed_once():
    assert notes.unmeasured(pd.DataFrame()) == ""
    frame = pd.concat([verdicts(0, 0), verdicts(0, 0), verdicts(6, 6)], ignore_index=True)
    assert notes.unmeasured(frame).startswith("test_accuracy could not be measured")


def test_arms_missing_planned_seeds_are_named_with_why_and_the_rerun():
    usable = pd.DataFrame({"arm": ["adam"] * 3 + ["wd"] * 2, "seed": [0, 1, 2, 0, 1]})
    stored = pd.DataFrame(
        {
            "arm": ["adam"] * 3 + ["wd"] * 3,
            "seed": [0, 1, 2, 0, 1, 2],
            "status": ["FINISHED"] * 5 + ["KILLED"],
        }
    )
    assert notes.missing_seeds(["adam"], (0, 1, 2), usable, stored, "s.toml") == []
    (note,) = notes.missing_seeds(["adam", "wd"], (0, 1, 2), usable, stored, "s.toml")
    assert note == (
        "wd has 2 of its 3 planned seeds (seed 2 not finished: KILLED); its comparisons "
        "pair only the seeds both arms have. Run `mnistlab study s.toml` again to train "
        "the missing runs."
    )
    # A seed never stored, and one finished but left out (missing metrics), say so.
    (note,) = notes.missing_seeds(["wd"], (0, 1, 2, 3), usable[usable.seed != 1], stored, "s")
    assert note.startswith("wd has 1 of its 4 planned seeds (seed 1 finished but left out")
    assert "seed 3 never started" in note


def test_a_running_run_is_not_called_a_failure_and_the_advice_is_to_look_again():
    usable = pd.DataFrame({"arm": ["base"] * 2 + ["wd"], "seed": [0, 1, 0]})
    stored = pd.DataFrame(
        {
            "arm": ["base"] * 2 + ["wd"] * 2,
            "seed": [0, 1, 0, 1],
            "status": ["FINISHED"] * 3 + ["RUNNING"],
        }
    )
    (note,) = notes.missing_seeds(["base", "wd"], (0, 1), usable, stored, "s.toml")
    assert "seed 1 not finished: RUNNING (training now, or its process died" in note
    assert "If its study is still training, look again when it ends" in note
    stored.loc[3, "status"] = "KILLED"  # a dead run: only the rerun
    (note,) = notes.missing_seeds(["base", "wd"], (0, 1), usable, stored, "s.toml")
    assert "look again" not in note and note.endswith("again to train the missing runs.")


def test_an_arm_whose_only_runs_are_training_is_told_to_wait_not_to_rerun():
    spec = SimpleNamespace(arm_names=["base", "deeper"], source="t.toml")
    every = pd.DataFrame(
        {
            "arm": ["base", "deeper"],
            "status": ["FINISHED", "RUNNING"],
            "run_name": ["base-s0", "deeper-s0"],
            "failure_reason": ["", ""],
        }
    )
    (note,) = notes.arms_without_runs(spec, ["base"], every)
    assert note.startswith("Arm deeper has no usable runs: deeper-s0 RUNNING (training now")
    assert "If its study is still training, look again when it ends" in note


def test_power_says_what_it_leaves_out_censored_pairs_and_an_adaptive_design():
    verdicts = [
        SimpleNamespace(variant="cnn3", claim="steps_to:0.98", censored_pairs=6, n=10),
        SimpleNamespace(variant="cnn3", claim="test_accuracy", censored_pairs=0, n=10),
    ]
    table = pd.DataFrame(
        {"variant": ["cnn3", "cnn3"], "claim": ["steps_to:0.98", "test_accuracy"], "note": ["", ""]}
    )
    fixed = notes.with_power_caveats(table, verdicts, adaptive=False)
    assert fixed.loc[0, "note"].startswith("cnn3, steps_to:0.98: 6 of 10 pairs are censored")
    assert "optimistic" in fixed.loc[0, "note"] and fixed.loc[1, "note"] == ""
    adaptive = notes.with_power_caveats(table.assign(note=["few seeds.", ""]), verdicts, True)
    assert adaptive.loc[0, "note"].startswith("few seeds. cnn3, steps_to:0.98: 6 of 10")
    assert all("This study is adaptive" in note for note in adaptive["note"])
    assert list(table["note"]) == ["", ""]  # the table it was given is left as it was
