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
