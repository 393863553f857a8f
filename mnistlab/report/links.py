"""Where a study can be seen: its store as a reader should see it, and its pages in the
MLflow UI (a tracking server's, or the one `make ui` serves for a local file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnistlab.store.runs_view import runs_view_query

LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` serves a local store


@dataclass(frozen=True)
class MlflowLinks:
    """Where the study lives in the MLflow UI: for the report's links."""

    base: str  # the UI's address: the tracking server, or `make ui`'s for a local file
    experiment_id: str
    study_run_id: str | None = None

    @property
    def experiment(self) -> str:
        return f"{self.base}/{experiment_page(self.experiment_id, study=True)}"

    def run(self, run_id: str) -> str:
        return f"{self.base}/#/experiments/{self.experiment_id}/runs/{run_id}"

    @property
    def study_run(self) -> str | None:
        return self.run(self.study_run_id) if self.study_run_id else None


def experiment_page(experiment_id: str, study: bool) -> str:
    """The experiment's runs page in the MLflow UI, after its address: in the Model training
    view (MLflow 3's UI would otherwise open on GenAI); for a study, with the saved view
    that groups its runs by arm (store.runs_view: else a fresh browser shows the study run
    folded and the Chart view empty)."""
    if not study:
        return f"#/experiments/{experiment_id}?workflowType=machine_learning"
    # The view only opens on the runs page itself: the experiment's address redirects
    # there and drops the parameter.
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&{runs_view_query()}"


def ui_base(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def display_store(tracking_uri: str, project: Path | None = None) -> str:
    """The store as a reader should see it: a local file relative to the project (the folder
    mnistlab runs in), never an absolute path of this machine; a server as it is."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return tracking_uri
    path = Path(tracking_uri[len(prefix) :])
    project = (project or Path.cwd()).resolve()
    try:
        return prefix + path.resolve().relative_to(project).as_posix()
    except ValueError:
        return f"{prefix}…/{path.name} (outside the project folder)"
