"""The CLI starts light: `mnistlab --help` and a mistyped command answer without importing
the heavy libraries, which each command imports only when it needs them."""

import subprocess
import sys

HEAVY = ("mlflow", "torch", "pandas", "scipy", "matplotlib", "sqlalchemy")


def test_importing_the_cli_imports_none_of_the_heavy_libraries():
    probe = (
        f"import sys, mnistlab.cli.app; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_run_name_tag_is_mlflows():
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    from mnistlab.names import RUN_NAME_TAG

    assert RUN_NAME_TAG == MLFLOW_RUN_NAME
