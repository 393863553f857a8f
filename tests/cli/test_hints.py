"""Hints name where the user sets the thing: a command's option for train, the spec for study."""

import os
import signal
import time
from types import SimpleNamespace

import pytest
import torch
import typer
from rich.progress import Progress

from mnistlab.cli.display import STUDY_LR_FIX, StudyDisplay, console
from mnistlab.cli.failures import READING_LEFT, user_errors
from mnistlab.errors import NonFiniteLossError
from mnistlab.spec.run import ConfigError
from mnistlab.training.loop import resolve_device
from tests.conftest import flat, invoke, refused

CUDA_SPEC = """
name = "gpu"
seeds = 1
[settings]
device = "cuda"
[arms.base]
model = "cnn2"
"""


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_a_missing_gpu_names_the_option_for_train(no_gpu):
    with pytest.raises(ConfigError, match="no CUDA GPU is visible; use --device cpu or auto"):
        resolve_device("cuda")


def test_a_missing_gpu_names_the_spec_setting_for_a_study(tmp_path, store_uri, no_gpu):
    spec = tmp_path / "gpu.toml"
    spec.write_text(CUDA_SPEC)
    text = refused(
        invoke("study", str(spec), "--tracking-uri", store_uri),
        "device 'cuda' was asked for but no CUDA GPU is visible; "
        f'set device = "cpu" or "auto" in {spec}\'s [settings].',
    )
    assert "--device" not in text


def test_a_diverged_study_run_points_at_the_spec_not_an_option(capsys):
    outcome = SimpleNamespace(
        run=SimpleNamespace(name="fast-s0"),
        run_id="r1",
        test_accuracy=0.1,
        train_seconds=1.0,
        diverged=True,
        failed=False,
        claimed_by="",
    )
    StudyDisplay(Progress(console=console), "s", 10).finished(outcome)
    text = flat(capsys.readouterr().err)
    assert text.endswith("Try a smaller lr for that arm in the spec.") and "--lr" not in text


@pytest.mark.parametrize(
    ("fix", "shown"),
    [((), "Try a smaller --lr."), ((STUDY_LR_FIX,), "Try a smaller lr for that arm in the spec.")],
)
def test_a_nan_loss_names_where_lr_is_set(capsys, fix, shown):
    with pytest.raises(typer.Exit) as exit_, user_errors(*fix):
        raise NonFiniteLossError("train loss became nan at step 3")
    assert exit_.value.exit_code == 1
    assert flat(capsys.readouterr().err) == (
        "Training diverged: train loss became nan at step 3. The run is marked FAILED in "
        f"MLflow. {shown}"
    )


@pytest.mark.parametrize(
    ("send", "code", "word"),
    [(signal.SIGTERM, 143, "Terminated."), (signal.SIGINT, 130, "Interrupted.")],
)
def test_a_signal_ends_the_command_with_the_shells_status_and_no_traceback(
    capsys, send, code, word
):
    """A scheduler's SIGTERM gives 143 (128 + 15) and Ctrl-C 130, as a shell reports them."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(typer.Exit) as ended, user_errors():
            os.kill(os.getpid(), send)
            time.sleep(5)  # the handler raises before this returns
    finally:
        signal.signal(signal.SIGTERM, before)
    assert ended.value.exit_code == code
    assert flat(capsys.readouterr().err).startswith(word)


def test_an_interrupted_read_only_command_does_not_speak_of_runs(capsys):
    """Ctrl-C during analyze, report or power: nothing was trained, so no run was KILLED."""
    with pytest.raises(typer.Exit) as ended, user_errors(left=READING_LEFT):
        raise KeyboardInterrupt
    text = flat(capsys.readouterr().err)
    assert ended.value.exit_code == 130
    assert text == f"Interrupted. {READING_LEFT}" and "KILLED" not in text


@pytest.mark.parametrize(
    "words",
    [("study", "experiments/paper.toml"), ("study", "my specs/a b.toml"), ("report", "lr[x]'s")],
)
def test_a_suggested_command_pastes_into_a_shell_as_the_words_it_names(words):
    import shlex

    from mnistlab.errors import command_line

    line = command_line(*words)
    assert shlex.split(line) == ["mnistlab", *words]
    assert line == "mnistlab " + " ".join(words) or " " in "".join(words) or "'" in "".join(words)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # on purpose
def test_a_ctrl_c_that_python_swallows_in_a_finalizer_still_ends_the_command(capsys):
    """Python ignores an exception raised in __del__ or a weakref callback ("Exception ignored
    in ..."); a Ctrl-C landing there must not let the command go on to exit 0."""

    class InterruptedWhileCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here, and Python swallows it

    before = signal.getsignal(signal.SIGINT)
    went_on = []
    try:
        with pytest.raises(typer.Exit) as ended, user_errors(left=READING_LEFT):
            InterruptedWhileCollected()  # collected at once: __del__ runs here
            went_on.append(True)
    finally:
        signal.signal(signal.SIGINT, before)
    assert went_on == [True]  # the interrupt was swallowed, as Python does ...
    assert ended.value.exit_code == 130  # ... and the command still ends as interrupted
    assert flat(capsys.readouterr().err).endswith(f"Interrupted. {READING_LEFT}")
