import json
from pathlib import Path

import pytest

from mnistlab.spec.parse import load_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """
name = "tiny"
models = ["cnn2", "cnn3"]
seeds = 3
[settings]
batch_size = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def assert_refused(tmp_path: Path, text: str, key: str, reason: str) -> None:
    """The spec is refused with a message naming its file, the key and the reason."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and f"'{key}'" in message and reason in message


def test_a_spec_expands_into_a_grid_interleaved_by_seed(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    grid = [(c.model, c.seed, c.batch_size) for c in spec.run_configs()]
    assert grid == [
        ("cnn2", 0, 20), ("cnn3", 0, 20), ("cnn2", 1, 20),
        ("cnn3", 1, 20), ("cnn2", 2, 20), ("cnn3", 2, 20),
    ]  # fmt: skip


def test_per_model_overrides_apply_to_that_model_only(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "[overrides.cnn3]\nlr = 0.0005\n"))
    assert {c.model: c.lr for c in spec.run_configs()} == {"cnn2": 0.001, "cnn3": 0.0005}


def test_shipped_specs_are_valid():
    paper = load_spec(REPO / "experiments" / "paper.toml")
    assert paper.arm_names == ["cnn2", "cnn3"] and len(paper.seeds) == 10
    assert {(c.batch_size, c.lr, c.eval_every, c.eval_subset) for c in paper.run_configs()} == {
        (50, 0.001, 50, 2000)
    }
    smoke = load_spec(REPO / "experiments" / "smoke.toml")
    assert len(smoke.seeds) == 2 and smoke.run_configs()[0].train_size < 60000


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        ("colour = 'red'\n" + GOOD, "colour", "unknown key"),
        (GOOD.replace('"cnn3"', '"vgg"'), "models", "unknown model 'vgg'"),
        (GOOD.replace("seeds = 3", "seeds = []"), "seeds", "give a count"),
        (GOOD.replace("seeds = 3", "seeds = 0"), "seeds", "1 or more"),
        (GOOD.replace("seeds = 3", "seeds = [1, 2, 1]"), "seeds", "duplicate seed"),
        (
            GOOD.replace("batch_size = 20", 'batch_size = "20"'),
            "settings.batch_size",
            "must be int",
        ),
        (
            GOOD.replace("batch_size = 20", "batch_sise = 20"),
            "settings.batch_sise",
            "unknown setting",
        ),
        (GOOD.replace("seeds = 3\n", ""), "seeds", "is required"),
        (GOOD + "[overrides.cnn9]\nlr = 0.1\n", "overrides.cnn9", "not one of the study's models"),
    ],
)
def test_bad_specs_name_the_file_the_key_and_the_reason(tmp_path, edit, key, reason):
    assert_refused(tmp_path, edit, key, reason)


def test_impossible_values_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(
        ConfigError, match=r"spec.toml: key 'settings.batch_size': batch_size must be a whole"
    ):
        load_spec(write(tmp_path, GOOD.replace("batch_size = 20", "batch_size = 0")))
    arm_set = ARMS.replace("lr = 0.003", "lr = -0.1")  # set by an arm: the arm's key is named
    with pytest.raises(ConfigError, match=r"key 'arms.fast.lr': lr must be a positive"):
        load_spec(write(tmp_path, arm_set))


def test_a_missing_spec_lists_the_specs_that_exist(tmp_path):
    (tmp_path / "paper.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"No study spec at .*nope.toml.*paper.toml"):
        load_spec(tmp_path / "nope.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = \n"))


ARMS = """
name = "lr"
seeds = 2
baseline = "slow"
[settings]
batch_size = 20
[arms.fast]
model = "cnn2"
lr = 0.003
[arms.slow]
model = "cnn2"
[arms.deep]
model = "cnn3"
[[claims]]
metric = "test_accuracy"
direction = "higher"
[[claims]]
metric = "seconds_to:0.97"
direction = "lower"
"""

# The paper spec's config hashes before arms and datasets existed: its runs must stay its runs.
PAPER_HASHES = [
    "c28f3c826e608b33", "796f8965d7962975", "5ad27e68c7c46c04", "b1d07e5de3dd54b5",
    "31cc667af23d5120", "2b4531e43fd5f024", "a7ee75c0bba2aa87", "1fac520cdfd888ce",
    "655ab0b3215948ab", "d7a1a3ca3335a2e9", "d8ca6a57a7d592cb", "7ed7ab32d0c8705f",
    "6ab8ef8c3694760f", "a7fecae1388d3e82", "1fb93c8d8818568a", "578dcced3c6f7f99",
    "e4e0efe5d9416d2f", "704c155a351aac1f", "f2863313f5d62e63", "2350941dce836833",
]  # fmt: skip


def test_the_paper_specs_runs_keep_their_config_hashes():
    paper = load_spec(REPO / "experiments" / "paper.toml")
    assert [c.config_hash() for c in paper.run_configs()] == PAPER_HASHES


def test_arms_are_named_carry_their_own_settings_and_the_baseline_is_chosen(tmp_path):
    spec = load_spec(write(tmp_path, ARMS))
    assert spec.arm_names == ["fast", "slow", "deep"] and spec.baseline == "slow"
    assert spec.variants == ["fast", "deep"] and spec.family_size == 4
    runs = [(p.name, p.config.model, p.config.lr, p.config.batch_size) for p in spec.planned_runs()]
    assert runs[:3] == [
        ("fast-s0", "cnn2", 0.003, 20),
        ("slow-s0", "cnn2", 0.001, 20),
        ("deep-s0", "cnn3", 0.001, 20),
    ]
    assert set(spec.arm_by_hash().values()) == {"fast", "slow", "deep"}
    assert [c.metric for c in spec.claims] == ["test_accuracy", "seconds_to:0.97"]
    assert 0.97 in spec.analysis_thresholds


def test_without_claims_a_spec_tests_the_papers_three_at_its_primary_threshold(tmp_path):
    spec = load_spec(write(tmp_path, "thresholds = [0.9, 0.97]\nprimary_threshold = 0.97\n" + GOOD))
    assert [(c.metric, c.direction) for c in spec.claims] == [
        ("steps_to:0.97", "lower"),
        ("epoch_train_seconds", "higher"),
        ("log_loss_spread", "higher"),
    ]
    assert spec.baseline == "cnn2" and spec.arm_names == ["cnn2", "cnn3"]


def test_the_dataset_is_part_of_a_runs_identity_only_when_it_is_not_mnist(tmp_path):
    mnist = load_spec(write(tmp_path, GOOD)).run_configs()[0]
    explicit = load_spec(write(tmp_path, 'dataset = "mnist"\n' + GOOD)).run_configs()[0]
    fashion = load_spec(write(tmp_path, 'dataset = "fashion-mnist"\n' + GOOD)).run_configs()[0]
    assert mnist.config_hash() == explicit.config_hash() != fashion.config_hash()
    assert fashion.dataset == "fashion-mnist"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        ARMS,
        GOOD + "[overrides.cnn3]\nlr = 0.0005\n",
        'dataset = "kmnist"\nquestion = "Why?"\ndescription = "d"\n' + ARMS,
    ],
)
def test_a_spec_survives_its_stored_record(tmp_path, text):
    spec = load_spec(write(tmp_path, text))
    record = json.loads(json.dumps(to_record(spec)))  # as it comes back from the store
    assert spec_from_record(record) == spec


def test_a_record_stored_before_arms_existed_still_reads():
    # Exactly what the previous mnistlab stored for the paper spec (dataclasses.asdict + baseline).
    old = {
        "name": "paper",
        "models": ["cnn2", "cnn3"],
        "seeds": list(range(10)),
        "settings": {"epochs": 1, "batch_size": 50, "lr": 0.001, "eval_every": 50},
        "overrides": {},
        "thresholds": [0.9, 0.95, 0.97, 0.98],
        "primary_threshold": 0.95,
        "description": "the paper",
        "source": "experiments/paper.toml",
        "baseline": "cnn2",
    }
    spec = spec_from_record(old)
    assert [c.config_hash() for c in spec.run_configs()] == PAPER_HASHES
    assert spec.claims == load_spec(REPO / "experiments" / "paper.toml").claims


def test_a_record_from_a_newer_mnistlab_is_refused_with_the_fix(tmp_path):
    record = {**to_record(load_spec(write(tmp_path, GOOD))), "version": 99}
    with pytest.raises(ConfigError, match="newer than this mnistlab reads.*Upgrade"):
        spec_from_record(record)


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (GOOD.replace("seeds = 3", "seeds = 3\n[arms.a]\nmodel = 'cnn2'"), "arms", "not both"),
        (ARMS.replace('model = "cnn3"', 'model = "vgg"'), "arms.deep.model", "unknown model"),
        (ARMS.replace('model = "cnn3"', 'model = "cnn22"'), "arms.deep.model", "unknown model 'cnn22'. Did you mean cnn2?"),
        (ARMS.replace('model = "cnn3"', 'model = "CNN3"'), "arms.deep.model", "Did you mean cnn3"),
        (ARMS.replace('model = "cnn3"', "lr = 0.1"), "arms.deep", "needs a model"),
        (ARMS.replace("lr = 0.003", "lr = 0.001"), "arms.slow", "same model and run settings"),
        (ARMS.replace("lr = 0.003", "threads = 1"), "arms.slow", "differs from arm 'fast' only in threads, which does not change a run's numbers"),
        (ARMS.replace("lr = 0.003", "colour = 1"), "arms.fast.colour", "unknown setting"),
        (ARMS.replace("lr = 0.003", "learning_rate = 0.01"), "arms.fast.learning_rate", "unknown setting. Did you mean lr?"),
        (ARMS.replace("batch_size = 20", "epoch = 2"), "settings.epoch", "unknown setting. Did you mean epochs?"),
        (ARMS.replace('baseline = "slow"', 'baseline = "nope"'), "baseline", "not one of the arms"),
        (ARMS.replace("[arms.fast]", "[overrides.fast]"), "overrides", "goes with models"),
        ('dataset = "cifar"\n' + GOOD, "dataset", "unknown dataset 'cifar'"),
        (GOOD.replace('name = "tiny"', 'name = ".."'), "name", "is only dots"),
        (ARMS.replace('"test_accuracy"', '"accuracy"'), "claims[0].metric", "Known: "),
        (ARMS.replace('"seconds_to:0.97"', '"seconds_to:97"'), "claims[1].metric", "(0, 1]"),
        (ARMS.replace('direction = "higher"', 'direction = "up"'), "claims[0].direction", "higher"),
        (ARMS.replace('"seconds_to:0.97"', '"test_accuracy"'), "claims[1].metric", "twice"),
        (ARMS.replace('direction = "lower"', 'direction = "lower"\nsize = 2'), "claims[1].size", "unknown key"),
        (ARMS.replace('direction = "lower"\n', ""), "claims[1].direction", "is required"),
        ("claims = []\n" + ARMS.split("[[claims]]")[0], "claims", "one or more"),
    ],
)  # fmt: skip
def test_bad_arms_datasets_and_claims_name_the_file_the_key_and_the_reason(
    tmp_path, edit, key, reason
):
    assert_refused(tmp_path, edit, key, reason)


def test_the_shipped_fashion_and_lr_specs_say_what_the_readme_says():
    fashion = load_spec(REPO / "experiments" / "fashion.toml")
    assert fashion.dataset == "fashion-mnist" and fashion.arm_names == ["cnn2", "cnn3"]
    assert [c.metric for c in fashion.claims][-1] == "test_accuracy"
    lr = load_spec(REPO / "experiments" / "lr.toml")
    assert lr.baseline == "lr1e-3" and {c.lr for c in lr.run_configs()} == {0.001, 0.003, 0.01}
    assert [c.metric for c in lr.claims] == ["test_accuracy", "seconds_to:0.97"]


def test_an_adaptive_spec_plans_its_looks_and_keeps_the_rule_in_its_record(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "[adaptive]\nmax_seeds = 12\nblock = 4\n"))
    assert spec.design().looks() == [3, 7, 11, 12]
    assert len(spec.planned_runs()) == 6 and len(spec.arm_by_hash()) == 24  # every possible run
    assert spec_from_record(json.loads(json.dumps(to_record(spec)))) == spec


def test_a_claim_margin_is_stored_and_checked_against_its_scale(tmp_path):
    spec = load_spec(
        write(tmp_path, ARMS.replace('direction = "lower"', 'direction = "lower"\nmargin = 1.05'))
    )
    assert spec.claims[1].margin == 1.05
    assert spec_from_record(json.loads(json.dumps(to_record(spec)))) == spec


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (GOOD + "[adaptive]\nmax_seeds = 2\nblock = 1\n", "adaptive.max_seeds", "more than"),
        (GOOD + "[adaptive]\nmax_seeds = 9\nblock = 0\n", "adaptive.block", "1 or more"),
        (GOOD + "[adaptive]\nmax_seeds = 9\nblock = 2\nlooks = 3\n", "adaptive.looks", "unknown key"),
        (GOOD.replace("seeds = 3", "seeds = [0, 1, 2]") + "[adaptive]\nmax_seeds = 9\nblock = 2\n",
         "seeds", "count of the first look"),
        (ARMS.replace('direction = "lower"', 'direction = "lower"\nmargin = 0.9'),
         "claims[1].margin", "ratio above 1"),
        (ARMS.replace('direction = "higher"', 'direction = "higher"\nmargin = -0.01'),
         "claims[0].margin", "positive difference"),
    ],
)  # fmt: skip
def test_bad_adaptive_tables_and_margins_are_refused(tmp_path, edit, key, reason):
    assert_refused(tmp_path, edit, key, reason)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("optimizer_args = { momentum = 2024-01-31 }", "arms.fast.optimizer_args.momentum"),
        ("model_args = { when = 2024-01-31T10:00:00 }", "arms.fast.model_args.when"),
        (
            'lr_schedule = "StepLR"\nlr_schedule_args = { step_size = 2, at = [1, 10:30:00] }',
            "arms.fast.lr_schedule_args.at[1]",
        ),
        ("augment = { shift = { d = 1979-05-27 } }", "arms.fast.augment.shift.d"),
    ],
)
def test_a_toml_date_in_a_table_setting_is_refused_naming_the_key(tmp_path, setting, key):
    edit = ARMS.replace("lr = 0.003", f"lr = 0.003\n{setting}")
    assert_refused(tmp_path, edit, key, "not a value a run setting can hold")
    with pytest.raises(ConfigError, match='Write it in quotes, e.g. "2024-01-31"'):
        load_spec(write(tmp_path, edit))


def test_a_spec_named_without_its_suffix_or_mistyped_is_suggested(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(GOOD)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "paper.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"No study spec at tiny\. Did you mean tiny\.toml\?$"):
        load_spec(Path("tiny"))
    with pytest.raises(ConfigError, match=r"Did you mean experiments/paper\.toml\?$"):
        load_spec(Path("paper"))
    with pytest.raises(ConfigError, match=r"Did you mean tinny\.toml|Did you mean tiny\.toml"):
        load_spec(Path("tinny.toml"))
    for n in range(20):  # a long listing is cut, not 46 names
        (tmp_path / f"spec{n:02d}.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"and 9 more\.$"):
        load_spec(Path("zzz.toml"))
