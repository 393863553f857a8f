"""The catalogue of claimable measures: names, columns, comparison scale, wording."""

import pytest

from mnistlab.spec.measures import HIGHER, LOWER, UnknownMeasure, measure, percent


def test_thresholded_measures_carry_their_threshold_column_and_wording():
    steps = measure("steps_to:0.95")
    assert (steps.column, steps.threshold, steps.log_scale) == ("steps_to_0.95", 0.95, False)
    assert steps.statement(LOWER) == "reaches 95% accuracy in fewer steps"
    seconds = measure("seconds_to:0.975")
    assert seconds.column == "seconds_to_0.975" and seconds.log_scale
    assert seconds.statement(HIGHER) == "needs more train time to reach 97.5% accuracy"


def test_time_and_loss_are_ratios_accuracy_and_spread_are_differences():
    ratios = {name for name in ("epoch_train_seconds", "seconds_per_step", "test_loss",
                                "final_train_loss", "raw_loss_sd") if measure(name).log_scale}  # fmt: skip
    assert len(ratios) == 5
    assert not measure("test_accuracy").log_scale and not measure("log_loss_spread").log_scale
    assert measure("epoch_train_seconds").comparison.startswith("ratio")


@pytest.mark.parametrize("name", ["accuracy", "steps_to", "steps_to:", "steps_to:0", "steps_to:1.5",
                                  "seconds_to:x", "test_accuracy:0.9", 3])  # fmt: skip
def test_unknown_or_malformed_measures_are_refused_with_the_known_ones(name):
    with pytest.raises(UnknownMeasure) as info:
        measure(name)
    assert "test_accuracy" in str(info.value) or "(0, 1]" in str(info.value)


def test_percentages_keep_their_decimals_only_when_needed():
    assert (percent(0.95), percent(0.975), percent(1.0)) == ("95%", "97.5%", "100%")
