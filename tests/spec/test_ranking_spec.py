"""Asking for a ranking: compare = "all-pairs" or a [ranking] table, refused with the fix when
it cannot be one, and kept in the stored spec."""

import pytest

from mnistlab.spec.parse import load_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.study import RankBy
from tests.conftest import invoke, refused
from tests.spec.test_spec import assert_refused, write

THREE = """
name = "three"
seeds = 5
[arms.base]
model = "cnn2"
[arms.deep]
model = "cnn3"
[arms.fast]
model = "cnn2"
lr = 0.003
[[claims]]
metric = "test_accuracy"
direction = "either"
[[claims]]
metric = "steps_to:0.95"
direction = "lower"
"""
TWO = """
name = "two"
seeds = 5
compare = "all-pairs"
[arms.base]
model = "cnn2"
[arms.deep]
model = "cnn3"
"""


def test_all_pairs_ranks_on_the_first_claim_that_says_which_way_is_better(tmp_path):
    spec = load_spec(write(tmp_path, 'compare = "all-pairs"\n' + THREE))
    assert spec.ranking == RankBy("steps_to:0.95", "lower")


def test_a_ranking_table_names_the_metric_and_survives_the_stored_record(tmp_path):
    text = THREE + '[ranking]\nmetric = "test_accuracy"\nbetter = "higher"\n'
    spec = load_spec(write(tmp_path, text))
    assert spec.ranking == RankBy("test_accuracy", "higher")
    assert spec_from_record(to_record(spec)).ranking == spec.ranking
    assert load_spec(write(tmp_path, THREE)).ranking is None
    assert "ranking" not in to_record(load_spec(write(tmp_path, THREE)))


def test_all_pairs_with_two_arms_is_refused_in_one_paragraph(in_tmp):
    path = in_tmp / "two.toml"
    path.write_text(TWO)
    refused(
        invoke("study", str(path)),
        "key 'compare'",
        "three or more arms",
        "this spec has 2 (base, deep)",
        'remove compare = "all-pairs", or add a third arm',
    )


@pytest.mark.parametrize(
    "edit, key, reason",
    [
        ('compare = "everything"\n', "compare", "unknown value 'everything'"),
        ('compare = "all-pairs"\n', "compare", "has none"),  # only an "either" claim below
        ('[ranking]\nmetric = "test_accuracy"\n', "ranking.better", "is required"),
        ('[ranking]\nmetric = "nope"\nbetter = "higher"\n', "ranking.metric", "unknown metric"),
        ('[ranking]\nmetric = "test_accuracy"\nbetter = "up"\n', "ranking.better", "'higher'"),
        ('[ranking]\nmetric = "test_accuracy"\nbetter = "higher"\nx = 1\n', "ranking.x", "unknown"),
    ],
)
def test_bad_ranking_requests_name_the_key_and_the_fix(tmp_path, edit, key, reason):
    either_only = THREE.split('[[claims]]\nmetric = "steps_to')[0]
    if edit.startswith("compare"):
        assert_refused(tmp_path, edit + either_only, key, reason)
    else:
        assert_refused(tmp_path, either_only + edit, key, reason)


def test_a_ranking_with_an_adaptive_design_is_refused(tmp_path):
    text = 'compare = "all-pairs"\n' + THREE.replace(
        "seeds = 5", "seeds = 5\n[adaptive]\nmax_seeds = 20\nblock = 5\n", 1
    )
    assert_refused(tmp_path, text, "compare", "[adaptive]")


def test_an_arm_name_too_long_for_the_rankings_mlflow_keys_is_refused_when_read(tmp_path):
    long = "a" * 240  # fits "n/ARM" (the baseline's only key), not "ranking/mean_rank/ARM"
    text = 'compare = "all-pairs"\n' + THREE.replace("[arms.base]", f"[arms.{long}]").replace(
        'name = "three"', f'name = "three"\nbaseline = "{long}"'
    )
    assert_refused(tmp_path, text, f"arms.{long}", "Shorten the arm name to at most 232")
