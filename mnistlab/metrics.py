"""The names of the metrics a training run writes, and which of them analysis reads back.

train.py writes exactly these; tracking, results and plots refer to them only by these names.
"""

TRAIN_LOSS = "train_loss"  # every step: the loss of the step's batch, before its update
EVAL_ACCURACY = "eval_accuracy"  # every eval_every steps, on the first eval_subset test images
EVAL_LOSS = "eval_loss"
TRAIN_SECONDS = "train_seconds"  # at each evaluation: cumulative train-only seconds
TEST_ACCURACY = "test_accuracy"  # after each epoch, on the full test set
TEST_LOSS = "test_loss"
EPOCH_TRAIN_SECONDS = "epoch_train_seconds"  # per epoch, evaluation excluded
EPOCH_SECONDS = "epoch_seconds"  # per epoch, everything included

HISTORY = (
    TRAIN_LOSS,
    EVAL_ACCURACY,
    EVAL_LOSS,
    TRAIN_SECONDS,
    TEST_ACCURACY,
    TEST_LOSS,
    EPOCH_TRAIN_SECONDS,
    EPOCH_SECONDS,
)
# A run without these cannot be analysed (logged by hand, or by much older code).
REQUIRED = (TRAIN_LOSS, EVAL_ACCURACY, EPOCH_TRAIN_SECONDS, TEST_ACCURACY)

# What publish writes on a study's run: per variant and claim (by its measure's column) the
# statistics and verdict, per arm its number of runs. Named here so that a spec's names can be
# checked against MLflow's key limit when the spec is read, long before anything is written.
VERDICT_STATISTICS = ("estimate", "ci_low", "ci_high", "p_holm")


def verdict_metric_key(variant: str, column: str, statistic: str) -> str:
    return f"{variant}/{column}/{statistic}"


def verdict_tag_key(variant: str, column: str) -> str:
    return f"verdict/{variant}/{column}"


def claim_tag_key(variant: str, column: str) -> str:
    return f"claim/{variant}/{column}"


def arm_count_key(arm: str) -> str:
    return f"n/{arm}"


def study_run_keys(variant: str, column: str) -> list[str]:
    """Every key publish writes for one variant and claim."""
    return [
        *(verdict_metric_key(variant, column, s) for s in VERDICT_STATISTICS),
        verdict_tag_key(variant, column),
        claim_tag_key(variant, column),
    ]
