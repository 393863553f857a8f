"""The divergence rule: a run whose loss ends above its start."""

from mnistlab.training.divergence import diverged


def test_the_divergence_rule_on_hand_made_losses():
    assert diverged([2.3, 1.0, 0.5, 0.4]) is False
    assert diverged([2.3, 2.0, 3.0, 9.0]) is True  # the last 10% (one step) is above the first
