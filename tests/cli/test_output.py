"""What the commands print reaches the reader as written (issue 27): never hard-wrapped when
output is not a terminal, and user or help text never read as rich markup."""

import io
import re

import pytest

from mnistlab.cli.display import describe
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.study.executors import RunOutcome
from tests.conftest import flat, invoke


def test_a_long_path_in_a_message_comes_out_whole_when_output_is_not_a_terminal(tmp_path):
    missing = tmp_path / ("deep-folder-" * 12) / "data"
    result = invoke("data", "--data-dir", str(missing))
    assert result.exit_code == 2
    assert f"The data folder {missing} (from --data-dir) does not exist" in result.output


def test_a_table_and_a_long_line_are_not_wrapped_into_a_file():
    from rich.table import Table

    from mnistlab.cli.display import PlainConsole

    out = io.StringIO()
    console = PlainConsole()
    console.file = out
    table = Table()
    table.add_column("claim")
    table.add_row("cnn3: " + "x" * 150)
    console.print("a message " * 30)
    console.print(table)
    lines = out.getvalue().splitlines()
    assert lines[0].rstrip() == ("a message " * 30).rstrip()
    assert any("cnn3: " + "x" * 150 in line for line in lines)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("analyze", "lr[/x]"), "Not a study name: 'lr[/x]' holds '[' (U+005B), '/', ']'"),
        (("data", "--data-dir", "missing[/old]"), "The data folder missing[/old] (from"),
        (("study", "specs [draft]/x.toml"), "No study spec at specs [draft]/x.toml"),
        (("report", "lr[bold]"), "Not a study name: 'lr[bold]' holds '[' (U+005B)"),
    ],
)
def test_brackets_in_user_text_are_printed_as_text(tmp_path, monkeypatch, args, shown):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs [draft]").mkdir()
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert shown in flat(result.output)


@pytest.mark.parametrize(
    ("command", "note"),
    [
        ("data", "[default: $MNISTLAB_DATA, else ./data]"),
        ("train", "[default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db]"),
        ("sync", "[default: $MNISTLAB_SPOOL, else ./mnistlab-spool]"),
    ],
)
def test_help_keeps_its_default_notes(command, note):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    # Help is laid out by click for a reader, which may break a line after a hyphen.
    assert note in flat(re.sub(r"-\n\s*", "-", result.output))


def test_a_failure_reason_with_brackets_is_shown_as_it_is():
    outcome = RunOutcome(
        PlannedRun("deeper", RunConfig(seed=3)), "abc123", float("nan"), 0.0, failure="loss [/nan]"
    )
    assert describe(outcome).plain == "deeper-s3: FAILED (loss [/nan]), run abc123"


def test_the_summary_lines_up_arm_names_in_any_script(capsys):
    import unicodedata
    from types import SimpleNamespace

    import pandas as pd

    from mnistlab import names
    from mnistlab.cli.display import print_summary

    def columns_wide(line: str) -> int:  # what a terminal gives each character
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)

    means = [names.TEST_ACCURACY, names.EPOCH_TRAIN_SECONDS, names.LOG_LOSS_SPREAD]
    summary = pd.DataFrame(
        {"arm": ["基线", "三层卷积", "cnn3"], "runs": [3, 3, 3]}
        | {m + names.MEAN_SUFFIX: [0.98, 0.97, 0.99] for m in means}
    )
    results = SimpleNamespace(
        study="研究", dataset_title="MNIST", summary=summary, differences={}, baseline="基线"
    )
    print_summary(results)
    table = capsys.readouterr().out.splitlines()[1:]
    assert len(table) == 4 and len({columns_wide(line.rstrip()) for line in table}) == 1
