"""A study: expand a spec into planned runs, skip finished ones, hand the rest to an executor.

Every run is identified by its config hash, so a rerun of the same spec only trains what is
missing, failed or killed. The spec is stored on the study's MLflow experiment (a versioned
record, spec.record.to_record) so that analysis needs nothing but the store.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.errors import MnistlabError, command_line
from mnistlab.names import (
    CONFIG_HASH_TAG,
    DATASET_FILE_TAG,
    DATASET_SHA256_TAG,
    DATASET_TAG,
    DEVICE_TAG,
    DIFFERENCES_TAG,
    NOTE_TAG,
    PARENT_TAG,
    ROLE_TAG,
    SPEC_ARTIFACTS,
    STUDY_ROLE,
    STUDY_TAG,
    THREADS_TAG,
)
from mnistlab.spec.describe import differences_text, study_differences
from mnistlab.spec.parse import spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.spec.study import StudySpec
from mnistlab.store.connect import resolve_tracking_uri
from mnistlab.store.store import Store, open_store
from mnistlab.study.executors import (
    Executor,
    RunOutcome,
    RunTarget,
    StudyError,
    StudyObserver,
    choose_executor,
)
from mnistlab.training.data_files import (
    check_data_root,
    data_source,
    ensure_dataset,
    resolve_data_dir,
)
from mnistlab.training.datasets import ImageData
from mnistlab.training.loop import resolve_device
from mnistlab.training.owndata import check_unchanged, is_own_dataset, shape_and_classes

__all__ = ["StudyError", "StudyObserver", "StudyReport", "plan_study", "run_study"]


@dataclass
class StudyPlan:
    experiment_id: str
    todo: list[PlannedRun]
    orphaned: list[str] = field(default_factory=list)  # runs found dead and marked FAILED
    study_run_id: str = ""  # the run that holds the spec and the report; parent of the rest
    claimed: list[str] = field(default_factory=list)  # live runs of another invocation
    planned_at: int = 0  # ms: runs claim their config against what finished since


class DesignChanged(StudyError):
    """An adaptive study's stopping rule was changed after it had started looking."""


def refuse_a_changed_rule(store: Store, spec: StudySpec) -> None:
    """A sequential study must finish under the rule it started with, or its error control
    is void: refuse a changed [adaptive] table once runs exist."""
    experiment = store.find_experiment(spec.name)
    record = store.spec_record(experiment) if experiment is not None else None
    if record is None:
        return
    before = record.get("adaptive")
    now = to_record(spec).get("adaptive")
    if before == now or before is None:
        return
    if any(run.status == "FINISHED" for run in store.runs(experiment.experiment_id)):
        raise DesignChanged(
            f"Study {spec.name!r} started with [adaptive] {before} and the spec now says {now}. "
            "Changing the stopping rule after looking at the results voids its error control. "
            "Restore the original [adaptive] table, or give the study a new name."
        )


def replaced_spec_warning(store: Store, spec: StudySpec) -> str:
    """A warning when the study's name already holds runs of another spec, else "".

    Not a refusal: editing a spec and rerunning is the normal workflow. But analysis reads
    only the last spec's runs (results.evidence.load_evidence), so runs of a different spec
    under a reused name silently drop out of it; warn only when stored runs that the stored
    spec counted are not this spec's.
    """
    experiment = store.find_experiment(spec.name)
    record = store.spec_record(experiment) if experiment is not None else None
    if record is None:
        return ""

    def content(r: dict) -> dict:  # what the spec says, not where it was read or its format
        return {k: v for k, v in r.items() if k not in ("version", "source")}

    if content(record) == content(to_record(spec)):
        return ""
    # The runs the stored spec's analysis used that this spec's will not.
    try:
        stored = spec_from_record(record)
    except MnistlabError:  # a record this version cannot read: nothing to compare, no warning
        return ""
    dropped = set(stored.arm_by_hash()) - set(spec.arm_by_hash())
    left_out = [
        run
        for run in store.runs(experiment.experiment_id)
        if run.tags.get(ROLE_TAG) != STUDY_ROLE and run.tags.get(CONFIG_HASH_TAG) in dropped
    ]
    if not left_out:
        return ""
    return (
        f"Study {spec.name!r} already holds runs of another spec (from "
        f"{record.get('source') or 'an earlier spec'}): its {len(left_out)} run(s) stay in the "
        "store, but the analysis will use only this spec's runs. Rename the study "
        f'(name = "..." in {spec.source}) to keep both.'
    )


def plan_study(
    store: Store,
    spec: StudySpec,
    force: bool = False,
    seeds: tuple[int, ...] | None = None,
    trained: frozenset[str] = frozenset(),
    execution: Callable[[RunConfig], tuple[str, str]] | None = None,
) -> StudyPlan:
    """Which runs of the grid (of `seeds`, default the spec's) still need training.

    Records the spec on the experiment. trained: config hashes this invocation already
    trained, never trained twice even with force. execution (strict reproducibility): the
    (device, threads) a run would have now; a finished run counts only if it had the same.
    """
    refuse_a_changed_rule(store, spec)
    experiment_id = store.experiment_id(spec.name)
    store.mark_as_training(experiment_id)
    study_run_id = record_study_run(store, experiment_id, spec)
    planned = spec.planned_runs(seeds)
    runs = store.runs(experiment_id)
    ours = set(spec.arm_by_hash())
    for run in runs:  # runs from before study runs existed join it too
        if run.tags.get(CONFIG_HASH_TAG) in ours and PARENT_TAG not in run.tags:
            store.set_run_tags(run.run_id, {PARENT_TAG: study_run_id})
    planned_at = int(time.time() * 1000)
    orphaned = store.fail_orphaned_runs(runs)
    # A config some live run (another invocation, any host) is training is left to it.
    busy = {
        run.tags.get(CONFIG_HASH_TAG): run
        for run in runs
        if run.status == "RUNNING"
        and run.run_id not in orphaned
        and run.tags.get(ROLE_TAG) != STUDY_ROLE
    }
    expected = {p.config.config_hash(): execution(p.config) for p in planned} if execution else {}
    finished = {
        run.tags.get(CONFIG_HASH_TAG)
        for run in runs
        if run.status == "FINISHED"
        and (
            execution is None
            or (run.tags.get(DEVICE_TAG), run.tags.get(THREADS_TAG))
            == expected.get(run.tags.get(CONFIG_HASH_TAG))
        )
    }
    skip = set(trained) if force else finished | set(trained)
    not_ours = skip | busy.keys()  # finished (or trained just now), or training elsewhere
    todo = [p for p in planned if p.config.config_hash() not in not_ours]
    left = busy.keys() - skip
    claimed = [
        f"{p.name} ({busy[p.config.config_hash()].tags.get('host', '?')})"
        for p in planned
        if p.config.config_hash() in left
    ]
    return StudyPlan(experiment_id, todo, orphaned, study_run_id, claimed, planned_at)


def record_study_run(store: Store, experiment_id: str, spec: StudySpec) -> str:
    """The study's one study run, holding the spec (spec.json, its hash, the spec.toml) as
    last run."""
    run_id = store.record_spec(experiment_id, to_record(spec))
    source = Path(spec.source)
    if source.is_file():
        with tempfile.TemporaryDirectory() as folder:
            shutil.copyfile(source, Path(folder) / "spec.toml")
            store.log_files(run_id, Path(folder), SPEC_ARTIFACTS)
    store.set_run_tags(
        run_id,
        {
            STUDY_TAG: spec.name,
            DATASET_TAG: spec.dataset,
            **(
                {DATASET_FILE_TAG: spec.dataset_source, DATASET_SHA256_TAG: spec.dataset_sha256}
                if spec.dataset_sha256
                else {}
            ),
            DIFFERENCES_TAG: differences_text(spec),
            NOTE_TAG: f"Study **{spec.name}**: {', '.join(spec.variants)} against "
            f"{spec.baseline} on {spec.dataset}. No report yet: run `{command_line('report', spec.name)}`."
            + "".join(
                f"\n\n- **{arm}**: {words}" for arm, words in study_differences(spec).items()
            ),
        },
    )
    store.set_runs_view(experiment_id, spec.arm_names)  # what the printed link opens
    return run_id


@dataclass
class StudyReport:
    planned: int
    skipped: int
    outcomes: list[RunOutcome]
    orphaned: list[str]
    experiment_id: str
    looks: list[str] = field(default_factory=list)  # adaptive: what each look decided
    claimed: list[str] = field(default_factory=list)  # left to another live invocation


def run_study(
    spec: StudySpec,
    tracking_uri: str | None = None,
    data_dir: Path | str | None = None,
    force: bool = False,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    data: ImageData | None = None,
    observer: StudyObserver | None = None,
    strict: bool = False,
) -> StudyReport:
    """Run what is missing of the grid and return what happened.

    strict (or the spec's strict = true): a finished run is reused only if it ran on the
    device and thread count this invocation would use, else it is trained again.
    """
    tracking_uri = resolve_tracking_uri(tracking_uri)
    chosen = choose_executor(executor, workers, ray_address, tracking_uri, data)
    for device in sorted({c.device for c in spec.run_configs()}):
        # No GPU where one is asked for: fail before anything is written, naming the spec key.
        resolve_device(device, f'set device = "cpu" or "auto" in {spec.source}\'s [settings]')
    check_nets(spec)  # a net that cannot train: refused before the data and the store
    data_root = str(Path(data.root if data else resolve_data_dir(data_dir)).resolve())
    if is_own_dataset(spec.dataset):  # an .npz file, gone or changed since the spec was read
        check_unchanged(spec.dataset, spec.dataset_source, spec.dataset_sha256, "the spec")
    elif data is None:  # missing or damaged data: fail before anything is written
        check_data_root(resolve_data_dir(data_dir), spec.dataset, data_source(data_dir))
        ensure_dataset(Path(data_root), spec.dataset, download=True)
    store = open_store(tracking_uri)  # creates (migrates) the store once, before any worker
    observer = observer or StudyObserver()
    if warning := replaced_spec_warning(store, spec):
        observer.warned(warning)
    execution = chosen.execution if strict or spec.strict else None
    invocation = _Invocation(spec, store, chosen, data_root, force, observer, execution)
    try:
        report = (_run_adaptive if spec.adaptive is not None else _run_fixed)(invocation)
    except KeyboardInterrupt:
        _end_study_run(store, spec, "KILLED")
        raise
    _end_study_run(store, spec, "FINISHED")
    return report


def _end_study_run(store: Store, spec: StudySpec, status: str) -> None:
    """Show in the UI how this invocation of the study ended: KILLED after Ctrl-C or SIGTERM
    (until an invocation completes it), FINISHED once one has trained all that was missing."""
    experiment = store.find_experiment(spec.name)
    run_id = experiment and store.study_run(experiment.experiment_id, spec.name, create=False)
    if not run_id:
        return
    if status == "FINISHED":
        store.set_study_status(run_id, status)
        return
    with contextlib.suppress(Exception):  # the interrupt, not a store error, is the news
        store.set_study_status(run_id, status)


@dataclass(frozen=True)
class _Invocation:
    """What one `mnistlab study` brings to each planning and training round."""

    spec: StudySpec
    store: Store
    chosen: Executor
    data_root: str
    force: bool
    observer: StudyObserver
    execution: Callable[[RunConfig], tuple[str, str]] | None

    def plan(
        self, seeds: tuple[int, ...] | None = None, trained: frozenset[str] = frozenset()
    ) -> StudyPlan:
        return plan_study(self.store, self.spec, self.force, seeds, trained, self.execution)

    def train(self, plan: StudyPlan) -> list[RunOutcome]:
        target = _target(plan, self.spec, self.store.tracking_uri, self.data_root)
        return self.chosen.run(plan.todo, target, self.observer)


def _run_fixed(invocation: _Invocation) -> StudyReport:
    """Train every planned run that is missing, in one go."""
    plan = invocation.plan()
    total = len(invocation.spec.planned_runs())
    skipped = total - len(plan.todo) - len(plan.claimed)  # finished before this invocation
    invocation.observer.planned(len(plan.todo), skipped, len(plan.claimed))
    outcomes = invocation.train(plan)
    claimed = _claimed(plan, outcomes)
    return StudyReport(total, skipped, outcomes, plan.orphaned, plan.experiment_id, claimed=claimed)


def check_nets(spec: StudySpec) -> None:
    """Build each arm's net and run it on one batch (training.models.check_net)."""
    from mnistlab.training.models import check_net

    shape, classes = (
        shape_and_classes(spec.dataset_source) if spec.dataset_sha256 else ((1, 28, 28), 10)
    )
    for arm in spec.arms:
        config = spec.arm_config(arm, spec.seeds[0])
        check_net(
            config.model,
            config.model_args,
            config.model_source,
            classes,
            shape,
            recipe=config,
            where=f"arm {arm.name}: ",
        )


def _target(plan: StudyPlan, spec: StudySpec, tracking_uri: str, data_root: str) -> RunTarget:
    return RunTarget(
        tracking_uri,
        plan.experiment_id,
        spec.name,
        data_root,
        spec.dataset_source or spec.dataset,  # an .npz file: workers load it by its path
        plan.study_run_id,
        plan.planned_at,
    )


def _claimed(plan: StudyPlan, outcomes: list[RunOutcome]) -> list[str]:
    """Runs left to another invocation: seen busy when planning, or lost at the claim."""
    return plan.claimed + [f"{o.run.name} ({o.claimed_by})" for o in outcomes if o.claimed_by]


def _run_adaptive(invocation: _Invocation) -> StudyReport:
    """Train look by look; after each, replay the sequential design and stop once every
    claim is decided. A rerun (after kill -9 too) replays the same looks from the stored
    runs, so it continues where the study stopped, under the same rule."""
    from mnistlab.results.evidence import analyse  # statistics only when a look needs them

    outcomes, orphaned, looks, claimed, trained = [], [], [], [], frozenset()
    total = skipped = 0
    spec = invocation.spec
    for count in spec.design().looks():
        plan = invocation.plan(tuple(range(count)), trained)
        planned = len(spec.arms) * count
        skipped_now = planned - total - len(plan.todo) - len(plan.claimed)
        invocation.observer.planned(len(plan.todo), skipped_now, len(plan.claimed))
        done = invocation.train(plan)
        outcomes += done
        orphaned += plan.orphaned
        claimed += _claimed(plan, done)
        trained |= {o.run.config.config_hash() for o in done}
        skipped += skipped_now
        total = planned
        results = analyse(invocation.store, spec.name)
        looks.append(results.look_summary())
        if results.all_decided:
            break
    return StudyReport(total, skipped, outcomes, orphaned, plan.experiment_id, looks, claimed)
