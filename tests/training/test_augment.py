"""Augmentation: seeded per-sample transforms that match torchvision's, checked at spec read."""

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from mnistlab.spec.parse import load_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError, RunConfig
from mnistlab.training import models
from mnistlab.training.augment import Augmenter, build_augmenter
from mnistlab.training.loop import augment_seed, split_seed, train
from tests.conftest import TINY
from tests.training.test_loop import BatchRecorder

FULL = {"translate": 2, "rotate": 10, "scale": 0.1, "erase": 0.25}


def digits(n=64):
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 6:22, 10:18] = torch.rand(n, 1, 16, 8, generator=generator)
    return images


def test_each_sample_is_torchvisions_affine_with_its_own_parameters():
    images = digits()
    augmenter = Augmenter({"translate": 2, "rotate": 10, "scale": 0.1}, seed=3)
    generator_state = augmenter.generator.get_state()
    out = augmenter(images)
    # Draw the same parameters again and warp each image with torchvision's own affine.
    augmenter.generator.set_state(generator_state)
    angle = augmenter._uniform(64, -10, 10)
    tx = torch.round(augmenter._uniform(64, -2, 2))
    ty = torch.round(augmenter._uniform(64, -2, 2))
    scale = augmenter._uniform(64, 0.9, 1.1)
    assert tx.abs().max() == 2 and len(set(angle.tolist())) == 64
    for i in range(64):
        expected = TF.affine(
            images[i],
            angle=float(angle[i]),
            translate=[float(tx[i]), float(ty[i])],
            scale=float(scale[i]),
            shear=[0.0, 0.0],
        )
        assert torch.equal(out[i], expected), i


def test_erasing_zeroes_one_box_in_about_the_asked_share_of_images():
    images = torch.ones(2000, 1, 28, 28)
    augmenter = Augmenter({"erase": 0.25}, seed=0)
    out = augmenter(images)
    chosen, top, left, eh, ew = augmenter.last_boxes
    assert 0.2 < chosen.double().mean() < 0.3
    for i in torch.nonzero(chosen).flatten()[:50].tolist():
        expected = TF.erase(images[i], int(top[i]), int(left[i]), int(eh[i]), int(ew[i]), 0.0)
        assert torch.equal(out[i], expected)
    assert torch.equal(out[~chosen], images[~chosen])
    area = (eh * ew)[chosen].double() / 784
    assert area.min() >= 0.01 and area.max() <= 0.4


def test_augmentation_changes_images_per_sample_and_leaves_the_input():
    images = digits()
    before = images.clone()
    out = Augmenter(FULL, seed=0)(images)
    assert torch.equal(images, before)
    changed = (out != images).flatten(1).any(1)
    assert changed.float().mean() > 0.8


def test_same_seed_same_images_other_seed_other_images():
    images = digits()
    first, again, other = (Augmenter(FULL, seed=s)(images) for s in (1, 1, 2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_empty_or_zero_augment_builds_nothing():
    assert build_augmenter({}, 0) is None
    assert build_augmenter({"rotate": 0}, 0) is None


def test_the_augment_seed_leaves_the_init_and_order_seeds_alone():
    assert augment_seed(0) not in split_seed(0)
    assert augment_seed(0) == augment_seed(0) != augment_seed(1)


def recorded_batches(tiny_mnist, monkeypatch, name, seed, augment):
    monkeypatch.setitem(models.MODELS, "cnn2", lambda: BatchRecorder(3))
    monkeypatch.setitem(models.MODELS, "cnn3", lambda: BatchRecorder(300))
    BatchRecorder.seen = []
    train(RunConfig(model=name, seed=seed, augment=augment, **TINY), tiny_mnist)
    return torch.cat(BatchRecorder.seen)


def test_arms_with_the_same_augmentation_and_seed_see_identical_batches(tiny_mnist, monkeypatch):
    cnn2 = recorded_batches(tiny_mnist, monkeypatch, "cnn2", 5, FULL)
    cnn3 = recorded_batches(tiny_mnist, monkeypatch, "cnn3", 5, FULL)
    other_seed = recorded_batches(tiny_mnist, monkeypatch, "cnn2", 6, FULL)
    plain = recorded_batches(tiny_mnist, monkeypatch, "cnn2", 5, {})
    assert torch.equal(cnn2, cnn3)
    assert not torch.equal(cnn2, other_seed)
    assert not torch.equal(cnn2, plain)


def test_an_augmented_run_is_bit_identical_on_rerun_and_differs_from_plain(tiny_mnist):
    first = train(RunConfig(seed=7, augment=FULL, **TINY), tiny_mnist)
    second = train(RunConfig(seed=7, augment=FULL, **TINY), tiny_mnist)
    plain = train(RunConfig(seed=7, **TINY), tiny_mnist)
    assert first.train_loss.tobytes() == second.train_loss.tobytes()
    assert not np.array_equal(first.train_loss, plain.train_loss)


def test_an_empty_augment_keeps_the_config_hash():
    assert RunConfig(augment={}).config_hash() == RunConfig().config_hash()
    assert RunConfig(augment={"translate": 2}).config_hash() != RunConfig().config_hash()


@pytest.mark.parametrize(
    ("augment", "phrase"),
    [
        ({"shift": 2}, "unknown key 'shift'"),
        ({"rotate": -5}, "augment.rotate must be a number of 0 or more"),
        ({"erase": 1.5}, "augment.erase"),
        ({"scale": 1.0}, "augment.scale"),
        ({"translate": True}, "augment.translate"),
    ],
)
def test_bad_augment_is_refused_naming_the_accepted_keys(tmp_path, augment, phrase):
    table = ", ".join(f"{k} = {str(v).lower()}" for k, v in augment.items())
    spec = tmp_path / "aug.toml"
    spec.write_text(f'name = "aug"\nseeds = 2\n[arms.a]\nmodel = "cnn2"\naugment = {{ {table} }}\n')
    with pytest.raises(ConfigError) as error:
        load_spec(spec)
    message = str(error.value)
    assert phrase in message
    assert "translate" in message and "rotate" in message and "erase" in message
    assert "\n" not in message


def test_a_spec_with_augment_reads_and_hashes_it(tmp_path):
    spec = tmp_path / "aug.toml"
    spec.write_text(
        'name = "aug"\nseeds = 2\n[arms.plain]\nmodel = "cnn2"\n'
        '[arms.shift]\nmodel = "cnn2"\naugment = { translate = 2, erase = 0.25 }\n'
    )
    study = load_spec(spec)
    configs = {arm.name: study.arm_config(arm, 0) for arm in study.arms}
    assert configs["shift"].augment == {"translate": 2, "erase": 0.25}
    assert configs["plain"].config_hash() != configs["shift"].config_hash()
    stored = spec_from_record(to_record(study))
    assert stored.arm_config(stored.arms[1], 0) == configs["shift"]
