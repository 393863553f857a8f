"""Every name the store holds for mnistlab: metric keys, tags and artifact paths.

training.loop writes exactly these metrics; the store, results and plots refer to them, and to
the tags, only by these names.
"""

TRAIN_LOSS = "train_loss"  # every step: the loss of the step's batch, before its update
EVAL_ACCURACY = "eval_accuracy"  # every eval_every steps, on the first eval_subset test images
EVAL_LOSS = "eval_loss"
TRAIN_SECONDS = "train_seconds"  # at each evaluation: cumulative train-only seconds
TEST_ACCURACY = "test_accuracy"  # after each epoch, on the full test set
TEST_LOSS = "test_loss"
EPOCH_TRAIN_SECONDS = "epoch_train_seconds"  # per epoch, evaluation excluded
EPOCH_SECONDS = "epoch_seconds"  # per epoch, everything included
# The lr of each step's update: every step with an lr_schedule, else once, at step 0.
LEARNING_RATE = "learning_rate"

# Per-run measures computed from those metrics (results.features.per_run_table): a column
# each, named as a claim names it; epoch_train_seconds, test_accuracy and test_loss keep
# their metric's name.
SECONDS_PER_STEP = "seconds_per_step"  # train seconds of the run over its steps
LOG_LOSS_SPREAD = "log_loss_spread"  # SD of log(train loss) around its rolling median
RAW_LOSS_SD = "raw_loss_sd"  # the paper's informal notion: rolling SD of the loss itself
FINAL_TRAIN_LOSS = "final_train_loss"  # mean train loss over the last 10% of steps
# results.features.arm_summary: a measure's column with these is its mean or SD over an arm.
MEAN_SUFFIX, SD_SUFFIX = "_mean", "_sd"

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

# Per-run columns about an accuracy threshold (results.features.per_run_table, one each per
# threshold) and the claim metrics that name them (spec.measures): a spec's "steps_to:0.95" is
# the column steps_to_0.95. Built only by threshold_column and threshold_metric.
STEPS_TO = "steps_to"  # first evaluation step at or above the threshold (else the last one)
SECONDS_TO = "seconds_to"  # cumulative train seconds logged at that step
REACHED = "reached"  # whether the run reached the threshold at all (False: censored)
CENSORED = "censored"  # results.features.arm_summary: the arm's runs that never reached it
MEDIAN_SUFFIX = "_median"  # arm_summary: the median over the arm's runs of a column


def threshold_column(prefix: str, threshold: float) -> str:
    """A per-threshold column: ('steps_to', 0.95) -> 'steps_to_0.95'."""
    return f"{prefix}_{threshold:g}"


def threshold_metric(prefix: str, threshold: float) -> str:
    """The claim metric as a spec writes it: ('steps_to', 0.95) -> 'steps_to:0.95'."""
    return f"{prefix}:{threshold:g}"


# A training run's tags: what it is (study.runner.run_tags), how it went, where it ran
# (store.provenance.environment_tags) and how it was run (study.executors).
STUDY_TAG = "study"  # the study (experiment) name; also on the study run
ARM_TAG = "arm"
MODEL_TAG = "model"
SEED_TAG = "seed"
DATASET_TAG = "dataset"  # also on the study run
CONFIG_HASH_TAG = "config_hash"  # spec.run.RunConfig.config_hash: equal hashes, comparable runs
PROTOCOL_TAG = "protocol_version"
TF32_TAG = "tf32"
CUDNN_DETERMINISTIC_TAG = "cudnn_deterministic"
N_PARAMETERS_TAG = "n_parameters"
MODEL_FILE_TAG = "model_file"  # a user's net: its source file, logged under MODEL_ARTIFACTS too
MODEL_SHA256_TAG = "model_sha256"  # and the file's SHA-256, part of the config hash
DIFFERENCES_TAG = "differences"  # the study run: each variant against the baseline, in words
DATASET_FILE_TAG = "dataset_file"  # an .npz dataset: its file (also on the study run)
DATASET_SHA256_TAG = "dataset_sha256"  # and the file's SHA-256, part of the config hash
DIVERGED_TAG = "diverged"  # "true" when the loss ended above its start (training.divergence)
CONTENDED_TAG = "contended"  # "true" when other runs shared the host while it trained
FAILURE_REASON_TAG = "failure_reason"
EXECUTOR_TAG = "executor"
WORKERS_TAG = "workers"
GIT_COMMIT_TAG = "git_commit"
GIT_DIRTY_TAG = "git_dirty"
TORCH_VERSION_TAG = "torch_version"
TORCHVISION_VERSION_TAG = "torchvision_version"
MLFLOW_VERSION_TAG = "mlflow_version"
PYTHON_VERSION_TAG = "python_version"
DEVICE_TAG = "device"
GPU_TAG = "gpu"
CPU_TAG = "cpu"
CPU_COUNT_TAG = "cpu_count"
THREADS_TAG = "threads"
HOST_TAG = "host"
PID_TAG = "pid"
SPEC_HASH_TAG = "spec_hash"  # on the study run: the hash of its stored spec.json

TRUE = "true"  # the value of a yes/no tag (DIVERGED_TAG, CONTENDED_TAG) when it holds
FINISHED = "FINISHED"  # MLflow's status of a run that ended normally
RUNNING = "RUNNING"  # a run whose process is training it, or died without saying so

# Columns of results' per-run table beside a column per tag (named after the tag) and per
# measure (spec.measures), and the tags copied into it as text, in its column order.
RUN_ID, RUN_NAME, STATUS, START_TIME = "run_id", "run_name", "status", "start_time"
RUN_TEXT_TAGS = (
    FAILURE_REASON_TAG,
    EXECUTOR_TAG,
    THREADS_TAG,
    DEVICE_TAG,
    GPU_TAG,
    CPU_TAG,
    HOST_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    TORCH_VERSION_TAG,
    MLFLOW_VERSION_TAG,
    PYTHON_VERSION_TAG,
)

# Tags and artifact paths
SPEC_TAG = "spec"  # older stores' experiment tag holding the spec record (read, never written)
SPEC_FILE = "spec.json"  # the study run's spec record (spec.record.to_record), under SPEC_ARTIFACTS
ROLE_TAG = "mnistlab.role"  # STUDY_ROLE on the one run that holds a study's spec and report
STUDY_ROLE = "study"
# MLflow 3's UI opens an experiment of this kind on its runs, not on the GenAI overview.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
NOTE_TAG = "mlflow.note.content"  # a run's description, Markdown, shown in the UI
PARENT_TAG = "mlflow.parentRunId"  # nests a training run under its study run in the UI
OF_SPEC = "of_spec"  # all_runs: the run is one of the current spec's configs
RUN_NAME_TAG = (
    "mlflow.runName"  # mlflow.utils.mlflow_tags.MLFLOW_RUN_NAME (a test keeps them equal)
)
# The MLflow UI's saved views of an experiment's runs page (3.17: an experiment tag per view,
# opened by the page's `viewStateShareKey` URL parameter; MLflow's own constant).
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
RUNS_VIEW_KEY = "mnistlab-arms"  # the view mnistlab's links open: runs grouped by arm
RUNS_VIEW_NAME = "Runs by arm (mnistlab)"  # its name in the UI's Views menu
REPORT_ARTIFACTS = "report"
SPEC_ARTIFACTS = "spec"  # the study run's spec.toml and spec.json
MODEL_ARTIFACTS = "model"  # a training run's weights and test predictions
PREDICTIONS_FILE = "test_predictions.npy"  # a run's labels for the test set, after training
HEARTBEAT_TAG = "heartbeat"  # ms since the epoch, refreshed while the run trains
CLAIM_TAG = "claim"  # the task that made the run: its attempts share it (Ray retries)
ATTEMPTS_TAG = "attempts"

# What publish writes on a study's run, as tags (a metric logged once would be a single-bar
# chart of its own in the UI's Chart view): per variant and claim (by its measure's column) the
# statistics and verdict, per arm its number of runs; the same table as VERDICTS_FILE. Named
# here so that a spec's names can be checked against MLflow's key limit when the spec is read,
# long before anything is written.
VERDICTS_FILE = "verdicts.json"
VERDICT_STATISTICS = ("estimate", "ci_low", "ci_high", "p_holm")
# Written for a claim with a margin: the margin, the two one-sided TOST p-values, their Holm p
# and the 1 - 2 alpha interval. No longer than the names above (the arm-name limit holds).
EQUIVALENCE_STATISTICS = ("margin", "tost_lo", "tost_hi", "p_equiv", "ci90_lo", "ci90_hi")


def verdict_statistic_key(variant: str, column: str, statistic: str) -> str:
    """A study run tag (up to mnistlab 0.x it was a metric of the same name)."""
    return f"{variant}/{column}/{statistic}"


verdict_metric_key = verdict_statistic_key  # the older name


def verdict_tag_key(variant: str, column: str) -> str:
    return f"verdict/{variant}/{column}"


def claim_tag_key(variant: str, column: str) -> str:
    return f"claim/{variant}/{column}"


def arm_count_key(arm: str) -> str:
    return f"n/{arm}"


def study_run_keys(variant: str, column: str) -> list[str]:
    """Every key publish writes for one variant and claim."""
    return [
        *(verdict_statistic_key(variant, column, s) for s in VERDICT_STATISTICS),
        *(verdict_statistic_key(variant, column, s) for s in EQUIVALENCE_STATISTICS),
        verdict_tag_key(variant, column),
        claim_tag_key(variant, column),
    ]


# The study run's ranking (stats.ranking), when the spec asks for one: a few tags (the order,
# Friedman's p, each arm's mean rank) and every pair's statistics in RANKING_FILE.
RANKING_FILE = "ranking.json"


def ranking_tag_key(*parts: str) -> str:
    """'ranking/order', 'ranking/mean_rank/ARM'."""
    return "/".join(("ranking", *parts))
