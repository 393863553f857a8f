import pytest
import torch

from mnistlab.training.models import MODELS, UnknownModelError, build_model, count_parameters


@pytest.mark.parametrize(("name", "expected"), [("cnn2", 28_938), ("cnn3", 95_882)])
def test_parameter_counts_match_the_design_notes(name, expected):
    assert count_parameters(build_model(name)) == expected


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_map_a_batch_of_digits_to_ten_logits(name):
    assert build_model(name)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="cnn2, cnn3"):
        build_model("resnet50")
