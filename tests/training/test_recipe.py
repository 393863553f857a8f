"""The training recipe: optimizer, schedule, weight decay, label smoothing and clipping."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistlab.spec.run import ConfigError, RunConfig, check_recipe
from mnistlab.training.datasets import to_float_images
from mnistlab.training.loop import prepare_runtime, split_seed, train
from mnistlab.training.models import build_model
from mnistlab.training.recipe import schedule_arguments
from tests.conftest import TINY
from tests.training.test_loop import RecordingSink


def test_the_default_recipe_is_the_papers_loop_step_for_step(tiny_mnist):
    """train() with the default recipe against the paper's loop written out by hand."""
    config = RunConfig(seed=2, **TINY)
    prepare_runtime(config)  # one thread, as train() will use
    init_seed, order_seed = split_seed(config.seed)
    images = to_float_images(tiny_mnist.train_images[: config.train_size])
    labels = tiny_mnist.train_labels[: config.train_size]
    torch.manual_seed(init_seed)
    model = build_model("cnn2").to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    order = torch.Generator().manual_seed(order_seed)
    permutation = torch.randperm(config.train_size, generator=order)
    by_hand = []
    for index in range(config.steps_per_epoch()):
        batch = permutation[index * config.batch_size : (index + 1) * config.batch_size]
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        by_hand.append(loss.item())
    assert np.array_equal(train(config, tiny_mnist).train_loss, np.float32(by_hand))


def test_new_settings_at_their_defaults_keep_the_config_hash():
    explicit = RunConfig(
        optimizer="Adam",
        optimizer_args={},
        weight_decay=0.0,
        lr_schedule="",
        lr_schedule_args={},
        label_smoothing=0.0,
        grad_clip=0.0,
        model_args={},
    )
    assert explicit.config_hash() == RunConfig().config_hash()
    assert RunConfig(optimizer="SGD").config_hash() != RunConfig().config_hash()
    assert RunConfig(model_args={"dropout": 0.1}).config_hash() != RunConfig().config_hash()


@pytest.mark.parametrize(
    "settings, phrases",
    [
        ({"optimizer": "SDG"}, ["'SDG' is not a class of torch.optim", "Did you mean SGD"]),
        ({"optimizer": "sgd"}, ["'sgd' is not a class of torch.optim", "Did you mean SGD?"]),
        ({"optimizer": "adamw"}, ["Did you mean AdamW?"]),
        ({"optimizer": "ADAM"}, ["Did you mean Adam?"]),
        ({"lr_schedule": "steplr"}, ["Did you mean StepLR?"]),
        (
            {"optimizer": "SGD", "optimizer_args": {"momentun": 0.9}},
            ["no argument 'momentun'", "Did you mean momentum", "accepts: lr, momentum"],
        ),
        ({"optimizer": "SGD", "optimizer_args": {"momentum": -1}}, ["Invalid momentum"]),
        ({"optimizer_args": {"lr": 0.1}}, ["set lr as its own setting"]),
        ({"weight_decay": -1e-4}, ["weight_decay must be a number of 0 or more"]),
        ({"label_smoothing": 1.0}, ["label_smoothing", "below 1"]),
        ({"grad_clip": -1.0}, ["grad_clip"]),
        ({"lr_schedule": "CosineAnealingLR"}, ["Did you mean CosineAnnealingLR"]),
        ({"lr_schedule": "StepLR"}, ["StepLR needs step_size"]),
        ({"lr_schedule": "ReduceLROnPlateau"}, ["not supported", "once per training step"]),
        (
            {"lr_schedule": "StepLR", "lr_schedule_args": {"step_size": 5, "gama": 0.5}},
            ["no argument 'gama'", "Did you mean gamma"],
        ),
        ({"lr_schedule_args": {"eta_min": 0.0}}, ["lr_schedule is not"]),
        ({"optimizer": "LBFGS"}, ["LBFGS is not supported", "needs a closure", "another"]),
        ({"optimizer": "SparseAdam"}, ["SparseAdam", "first step", "sparse gradients"]),
        (
            {"lr_schedule": "StepLR", "lr_schedule_args": {"step_size": 2, "gamma": "x"}},
            ["StepLR's gamma must be a number", "got 'x'"],
        ),
        (
            {"lr_schedule": "LinearLR", "lr_schedule_args": {"start_factor": 0}},
            ["LinearLR", "start_factor"],
        ),
        (
            {"lr_schedule": "StepLR", "lr_schedule_args": {"step_size": -3}},
            ["step_size counts training steps", "1 or more, got -3"],
        ),
    ],
)
def test_a_bad_recipe_is_refused_with_the_fix(settings, phrases):
    with pytest.raises(ConfigError) as error:
        check_recipe(RunConfig(**settings))
    for phrase in phrases:
        assert phrase in str(error.value)


def test_the_runs_length_and_peak_lr_fill_the_schedule_arguments():
    config = RunConfig(lr=0.02, optimizer="SGD", lr_schedule="OneCycleLR")
    from torch.optim import lr_scheduler

    filled = schedule_arguments(config, lr_scheduler.OneCycleLR, 1200)
    assert filled["total_steps"] == 1200 and filled["max_lr"] == 0.02
    cosine = RunConfig(lr_schedule="CosineAnnealingLR", lr_schedule_args={"T_max": 7})
    assert schedule_arguments(cosine, lr_scheduler.CosineAnnealingLR, 1200) == {"T_max": 7}


def test_a_schedule_steps_every_step_and_its_lr_is_logged(tiny_mnist):
    sink = RecordingSink()
    config = RunConfig(
        optimizer="SGD",
        optimizer_args={"momentum": 0.9, "nesterov": True},
        lr=0.05,
        lr_schedule="CosineAnnealingLR",
        epochs=2,
        **TINY,
    )
    train(config, tiny_mnist, sink)
    steps, lrs = zip(*sink.metrics["learning_rate"], strict=True)
    assert list(steps) == list(range(20))
    assert lrs[0] == 0.05 and all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[-1] == pytest.approx(0.05 * (1 + np.cos(np.pi * 19 / 20)) / 2)


def test_a_constant_lr_is_logged_once(tiny_mnist):
    sink = RecordingSink()
    train(RunConfig(epochs=2, **TINY), tiny_mnist, sink)
    assert sink.metrics["learning_rate"] == [(0, 0.001)]


@pytest.mark.parametrize(
    "settings",
    [
        {"label_smoothing": 0.1},
        {"grad_clip": 0.01},
        {"optimizer": "AdamW", "weight_decay": 0.5},
        {"model_args": {"dropout": 0.5}},
        {"model_args": {"batchnorm": True, "channels": [8, 16]}},
    ],
)
def test_each_setting_changes_the_losses_and_is_reproducible(tiny_mnist, settings):
    default = train(RunConfig(**TINY), tiny_mnist).train_loss
    first = train(RunConfig(**TINY, **settings), tiny_mnist).train_loss
    again = train(RunConfig(**TINY, **settings), tiny_mnist).train_loss
    assert np.array_equal(first, again)
    assert not np.array_equal(first, default)


def test_a_spec_with_a_bad_recipe_is_refused_before_the_store(tmp_path):
    from tests.conftest import TWO_ARM_SPEC, invoke, refused

    path = tmp_path / "s.toml"
    path.write_text(TWO_ARM_SPEC + '\noptimizer = "SDG"\n')
    result = invoke("study", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    refused(result, str(path), "'SDG' is not a class of torch.optim", "Did you mean SGD")
    assert not (tmp_path / "m.db").exists()


def test_a_net_without_parameters_is_refused_with_the_arm_and_the_fix():
    from mnistlab.training.models import check_net
    from mnistlab.training.recipe import check_step_on_net

    config = RunConfig(model="cnn2", optimizer="SGD")
    assert check_net("cnn2", {}, recipe=config, where="arm a: ") > 0  # a real step passes
    with pytest.raises(ConfigError) as error:
        check_step_on_net(config, torch.nn.Flatten(), torch.zeros(2, 1, 28, 28), "arm a: ")
    assert "arm a: the net 'cnn2' has no trainable parameters" in str(error.value)
    assert "torch.nn.Parameter" in str(error.value)


def test_the_recipe_probe_trains_nothing_that_is_kept():
    from mnistlab.training.recipe import check_step_on_net

    net = build_model("cnn2")
    before = [p.detach().clone() for p in net.parameters()]
    batch = torch.rand(2, 1, 28, 28)
    state = torch.random.get_rng_state()
    check_step_on_net(RunConfig(optimizer="SGD", lr=1.0), net, batch, "")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert torch.equal(state, torch.random.get_rng_state())
