"""An arm in words: its recipe and what it changes against the baseline, checked by hand."""

from mnistlab.spec.describe import differences, recipe, study_differences
from mnistlab.spec.parse import parse_spec
from mnistlab.spec.run import RunConfig

BASE = RunConfig()


def test_an_sgd_arm_with_dropout_and_a_schedule():
    arm = RunConfig(
        optimizer="SGD",
        optimizer_args={"momentum": 0.9, "nesterov": True},
        lr=0.05,
        model_args={"dropout": 0.25},
        lr_schedule="CosineAnnealingLR",
        weight_decay=1e-4,
    )
    assert differences(BASE, arm) == (
        "dropout 0.25; SGD (momentum 0.9, nesterov) instead of Adam; lr 0.05 instead of 0.001; "
        "lr schedule CosineAnnealingLR instead of constant; weight decay 0.0001 instead of none"
    )


def test_another_net_with_its_parameter_counts_and_regularisation():
    arm = RunConfig(model="cnn3", augment={"translate": 2}, label_smoothing=0.1, epochs=3)
    assert differences(BASE, arm, 50_000, 28_938) == (
        "cnn3 (50,000 parameters) instead of cnn2 (28,938 parameters); label smoothing 0.1 "
        "instead of none; augmentation translate 2 instead of none; epochs 3 instead of 1"
    )


def test_a_user_net_names_its_file_and_source_hash():
    arm = RunConfig(model="nets/my_net.py:SmallMLP", model_sha256="a1b2c3d4" + "0" * 56)
    assert differences(BASE, arm, 201_482) == (
        "SmallMLP from nets/my_net.py (201,482 parameters, source a1b2c3d4) instead of cnn2"
    )


def test_model_args_changed_removed_and_widths_with_their_counts():
    base = RunConfig(model_args={"dropout": 0.5, "batchnorm": True})
    arm = RunConfig(model_args={"dropout": 0.1, "channels": [8, 16]})
    assert differences(base, arm, 10_000, 28_938) == (
        "batchnorm back to the net's default instead of on; channels 8×16; dropout 0.1 "
        "instead of 0.5; 10,000 parameters instead of 28,938"
    )
    assert differences(base, base) == "the same recipe"


def test_the_recipe_names_every_setting():
    arm = RunConfig(optimizer="AdamW", optimizer_args={"amsgrad": False}, grad_clip=1.0)
    assert recipe(arm, 28_938) == (
        "cnn2 (28,938 parameters); optimizer AdamW (no amsgrad); lr 0.001; lr schedule "
        "constant; weight decay none; label smoothing none; gradient norm clip 1; augmentation "
        "none; batch size 50; epochs 1; train images 60,000; evaluation every 50 steps; test "
        "images per evaluation 2,000"
    )


def test_a_study_says_it_for_every_variant_against_its_baseline(tmp_path):
    document = {
        "name": "s",
        "seeds": 2,
        "baseline": "adam",
        "settings": {"train_size": 1000},
        "arms": {
            "sgd": {"model": "cnn2", "optimizer": "SGD", "lr": 0.05},
            "adam": {"model": "cnn2"},
            "wd": {"model": "cnn2", "weight_decay": 0.001},
        },
    }
    spec = parse_spec(document, tmp_path / "s.toml")
    assert study_differences(spec) == {
        "sgd": "SGD instead of Adam; lr 0.05 instead of 0.001",
        "wd": "weight decay 0.001 instead of none",
    }
