"""The mnistlab command line: thin commands over the modules that do the work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnistlab.cli.display import (
    STUDY_LR_FIX,
    StudyDisplay,
    console,
    experiment_link,
    labelled,
    print_power,
    print_study_outcome,
    print_summary,
    print_verdicts,
    training_progress,
    warn_diverged,
)
from mnistlab.cli.failures import DATA_LEFT, READING_LEFT, SYNC_LEFT, user_errors
from mnistlab.cli.options import (
    DATASET_HELP,
    DEFAULT,
    DataDir,
    StudyName,
    TrackingUri,
    run_config_from,
)

app = typer.Typer(
    help="Train, compare and report on MNIST CNNs over many seeds, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help and usage errors as plain text: help strings hold [default: ...] notes, and rich's
    # panels would both read them as markup and break lines at 80 columns in a log.
    rich_markup_mode=None,
)


@app.command()
def data(
    dataset: Annotated[str, typer.Option(help=DATASET_HELP)] = "mnist",
    data_dir: DataDir = None,
) -> None:
    """Find, download if missing and verify a dataset; print where it is."""
    with user_errors(left=DATA_LEFT):
        from mnistlab.training.datasets import load_dataset

        loaded = load_dataset(data_dir, dataset)
        where = loaded.dataset if loaded.sha256 else loaded.info.raw_dir(loaded.root)
        typer.echo(
            f"{loaded.info.title} verified in {where}: "
            f"{len(loaded.train_labels)} train and {len(loaded.test_labels)} test images."
        )


@app.command()
def train(
    model: Annotated[
        str,
        typer.Option(help='Registered net name (cnn2, cnn3) or your own: "path/to/file.py:Class".'),
    ] = DEFAULT.model,
    seed: Annotated[int, typer.Option(help="Seeds initialisation and batch order.")] = DEFAULT.seed,
    dataset: Annotated[str, typer.Option(help=DATASET_HELP)] = DEFAULT.dataset,
    epochs: int = DEFAULT.epochs,
    batch_size: int = DEFAULT.batch_size,
    lr: Annotated[
        float, typer.Option(help="Learning rate (the peak, with a schedule).")
    ] = DEFAULT.lr,
    optimizer: Annotated[
        str, typer.Option(help="Any class of torch.optim, e.g. Adam, SGD, AdamW.")
    ] = DEFAULT.optimizer,
    weight_decay: float = DEFAULT.weight_decay,
    lr_schedule: Annotated[
        str,
        typer.Option(help="Any class of torch.optim.lr_scheduler, stepped every step; '' = none."),
    ] = DEFAULT.lr_schedule,
    label_smoothing: float = DEFAULT.label_smoothing,
    grad_clip: Annotated[
        float, typer.Option(help="Clip the gradient norm to this; 0 = no clipping.")
    ] = DEFAULT.grad_clip,
    eval_every: Annotated[
        int, typer.Option(help="Evaluate when step % this == 0.")
    ] = DEFAULT.eval_every,
    eval_subset: Annotated[
        int, typer.Option(help="First N test images for evaluation.")
    ] = DEFAULT.eval_subset,
    train_size: Annotated[int, typer.Option(help="First N training images.")] = DEFAULT.train_size,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = DEFAULT.device,
    threads: Annotated[
        int, typer.Option(help="CPU threads; 0 keeps torch's default.")
    ] = DEFAULT.threads,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "train",
    data_dir: DataDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Train one net on one seed and track it in MLflow."""
    options = dict(locals())  # the options, before any other name is bound here
    with user_errors():
        from mnistlab.spec.limits import folder_name_problem
        from mnistlab.spec.run import ConfigError, PlannedRun

        if problem := folder_name_problem(experiment):
            raise ConfigError(f"--experiment: the experiment name {problem}")
        config = run_config_from(options)
        planned = PlannedRun(model.rpartition(":")[2] if ":" in model else model, config)
        loaded = _checked_run_data(config, data_dir)  # before the store: bad data leaves no store
        from mnistlab.store.store import open_store

        store = open_store(tracking_uri)
        experiment_id = store.experiment_id(experiment)
        store.mark_as_training(experiment_id)  # the UI opens it on its runs, not on GenAI
        run_id, result = _train_with_progress(planned, loaded, store, experiment_id, experiment)
        _report_run(planned, result, run_id, store, experiment, experiment_id)


def _report_run(planned, result, run_id: str, store, experiment: str, experiment_id: str) -> None:  # noqa: ANN001
    """Warn if the run diverged; print its test accuracy, times and where MLflow holds it."""
    from mnistlab.training.divergence import diverged

    if diverged(result.train_loss):
        warn_diverged(planned.name)
    typer.echo(
        f"{planned.name}: test accuracy {result.test_accuracy[-1]:.4f}, "
        f"train {sum(result.epoch_train_seconds):.1f} s of {sum(result.epoch_seconds):.1f} s "
        f"on {result.device} ({result.threads} threads). "
        f"MLflow run {run_id} in experiment '{experiment}' at {store.tracking_uri}. "
        + experiment_link(store.tracking_uri, experiment_id)
    )


def _checked_run_data(config, data_dir: Path | None):  # noqa: ANN001, ANN202
    """Check the device, recipe, dataset and net of a run; returns the loaded dataset."""
    from mnistlab.spec.run import check_recipe
    from mnistlab.training.datasets import load_dataset
    from mnistlab.training.loop import resolve_device
    from mnistlab.training.models import check_net
    from mnistlab.training.owndata import check_run_data

    resolve_device(config.device)  # no GPU where one is asked for: before anything else
    check_recipe(config)
    loaded = load_dataset(data_dir, config.dataset_source or config.dataset)
    check_run_data(config, loaded)  # an .npz file: train_size and eval_subset fit it
    shape = tuple(loaded.train_images.shape[1:]) if loaded.sha256 else (1, 28, 28)
    classes = int(loaded.train_labels.max()) + 1 if loaded.sha256 else 10
    check_net(config.model, config.model_args, config.model_source, classes, shape, recipe=config)
    return loaded


def _train_with_progress(planned, loaded, store, experiment_id: str, experiment: str):  # noqa: ANN001, ANN202
    """Train and track the run, with a progress bar; returns its MLflow run id and result."""
    from mnistlab.study.runner import tracked_train

    total = planned.config.steps_per_epoch() * planned.config.epochs
    with training_progress() as progress:
        task = progress.add_task(planned.name, total=total, loss=float("nan"), acc=0.0)
        return tracked_train(
            planned,
            loaded,
            store,
            experiment_id,
            study=experiment,
            on_eval=lambda p: progress.update(
                task, completed=p.step + 1, loss=p.train_loss, acc=p.accuracy
            ),
        )


@app.command()
def study(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="experiments/NAME.toml")],
    force: Annotated[bool, typer.Option(help="Rerun every run, finished or not.")] = False,
    workers: Annotated[
        int,
        typer.Option(help="Local processes; >1 splits the cores (overlapping runs are contended)."),
    ] = 1,
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster; default starts a local one.")
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Reuse a finished run only if it ran at this device and thread count; "
            "else retrain (numbers are bit-identical only then)."
        ),
    ] = False,
    data_dir: DataDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run a study spec's grid of arms x seeds; finished runs are skipped."""
    with user_errors(STUDY_LR_FIX):
        from mnistlab.spec.parse import load_spec
        from mnistlab.study.run import run_study

        spec = load_spec(spec_path)
        steps = max(c.steps_per_epoch() * c.epochs for c in spec.run_configs())
        with training_progress() as progress:
            report = run_study(
                spec,
                tracking_uri,
                data_dir,
                force=force,
                workers=workers,
                executor=executor,
                ray_address=ray_address,
                observer=StudyDisplay(progress, spec.name, steps),
                strict=strict,
            )
        if print_study_outcome(spec, spec_path, report):
            raise typer.Exit(1)


def _check_study_name(study_name: str, command: str) -> None:
    from mnistlab.cli.options import refuse_spec_path
    from mnistlab.spec.limits import folder_name_problem, name_problem
    from mnistlab.spec.run import ConfigError

    refuse_spec_path(study_name, command)
    if problem := name_problem(study_name):
        raise ConfigError(f"Not a study name: {problem} A study is named by its spec's name key.")
    if problem := folder_name_problem(study_name):
        raise ConfigError(f"The study name {problem}")


def _results(study_name: str, tracking_uri: str | None, command: str):  # noqa: ANN202
    """The store (opened to read: never created) and the study's results."""
    from mnistlab.results.evidence import analyse
    from mnistlab.store.store import open_store

    _check_study_name(study_name, command)
    store = open_store(tracking_uri, create=False)
    return store, analyse(store, study_name)


@app.command()
def analyze(study_name: StudyName, tracking_uri: TrackingUri = None) -> None:
    """Print a study's per-arm statistics and the verdict on each claim for each variant."""
    with user_errors(left=READING_LEFT):
        _, results = _results(study_name, tracking_uri, "analyze")
        print_summary(results)
        print_verdicts(results)
        from mnistlab.cli.ranking_display import print_ranking
        from mnistlab.results.ranking import ranking_gap, study_ranking

        print_ranking(study_ranking(results), ranking_gap(results))


@app.command()
def report(
    study_name: StudyName,
    out: Annotated[Path, typer.Option(help="Folder for reports/<study>/.")] = Path("reports"),
    data_dir: DataDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write reports/<study>/index.html, report.pdf and CSV tables from the runs in MLflow."""
    with user_errors(left=READING_LEFT):
        from mnistlab.report.demo import predict_test_set
        from mnistlab.report.destination import check_destination
        from mnistlab.report.render import write_report
        from mnistlab.results.evidence import power_analysis

        _check_study_name(study_name, "report")
        check_destination(out, study_name)  # before seconds of analysis and rendering
        store, results = _results(study_name, tracking_uri, "report")
        print_verdicts(results)
        from mnistlab.report.publish import mlflow_links, publish_report
        from mnistlab.results.ranking import study_ranking

        ranking = study_ranking(results)
        demo, demo_note = predict_test_set(results, store, data_dir)
        links = mlflow_links(store, results)
        paths = write_report(results, demo, demo_note, out, power_analysis(results), links, ranking)
        experiment_id, run_id = publish_report(store, results, paths.html.parent, ranking)
        typer.echo(f"Report written: {paths.html} and {paths.pdf}")
        typer.echo(
            f"In MLflow: study run {run_id} of experiment '{study_name}' (artifacts: report/). "
            + experiment_link(store.tracking_uri, experiment_id, study=True)
        )


@app.command("fetch-report")
def fetch_report(
    study_name: StudyName,
    out: Annotated[Path, typer.Option(help="Folder for reports/<study>/.")] = Path("reports"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Download the last rendered report of a study from its tracking store (or server)."""
    with user_errors(left=READING_LEFT):
        from mnistlab.report.destination import check_destination
        from mnistlab.report.publish import fetch_report as fetch
        from mnistlab.store.store import open_store

        _check_study_name(study_name, "fetch-report")
        check_destination(out, study_name)
        folder = fetch(open_store(tracking_uri, create=False), study_name, out)
        typer.echo(f"Report fetched: {folder / 'index.html'} and {folder / 'report.pdf'}")


@app.command()
def power(
    study_name: StudyName,
    tracking_uri: TrackingUri = None,
    effect: Annotated[
        float | None,
        typer.Option(help="Size the study for this effect, in the claim's units (1.05: a ratio)."),
    ] = None,
    claim: Annotated[
        str | None, typer.Option(help="The claim's metric --effect is for (needed with several).")
    ] = None,
) -> None:
    """How many seeds each claim needs for 80% power, from the study's own runs (a pilot too).

    At the observed effect the seeds are planned at the lower 70% confidence bound of its
    standardized size d_z (noncentral t; a safeguard power analysis), so that a study sized
    from a noisy pilot still reaches 80% (the median study sized from 5-, 10- or 20-seed
    pilots does, in simulation); beside it, the range of plans the pilot's sampling
    error allows. A pilot whose bound is at or below 0 shows no effect and cannot size a
    study: name the effect you care about with --effect (its SD then at its 80% upper bound).
    """
    with user_errors(left=READING_LEFT):
        from mnistlab.cli.options import check_effect
        from mnistlab.results.evidence import power_analysis
        from mnistlab.spec.run import ConfigError

        _, results = _results(study_name, tracking_uri, "power")
        metrics = [c.metric for c in results.spec.claims]
        if effect is not None and claim is None and len(metrics) > 1:
            raise ConfigError(
                f"--effect is in one claim's units; name it with --claim ({', '.join(metrics)})."
            )
        if claim is not None and claim not in metrics:
            raise ConfigError(
                f"--claim {claim!r} is not a claim of {study_name}: {', '.join(metrics)}."
            )
        check_effect(claim or metrics[0], effect)
        effects = {} if effect is None else {claim or metrics[0]: effect}
        table, _ = power_analysis(results, effects)
        if table.empty:
            console.print(
                labelled(
                    f"No power analysis for {study_name}:",
                    "yellow",
                    "it needs a baseline and a variant with runs on common seeds.",
                )
            )
            raise typer.Exit(1)
        print_power(results, table)


@app.command()
def sync(
    spool: Annotated[
        Path | None,
        typer.Option(help="Spool folder [default: $MNISTLAB_SPOOL, else ./mnistlab-spool]"),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri", help="Write there instead of the store each run was meant for."
        ),
    ] = None,
) -> None:
    """Write runs spooled during a tracking-store outage into the store, then remove them."""
    with user_errors(left=SYNC_LEFT):
        import shutil

        from mnistlab.store.spool import SpoolError, read_spool, spool_root, spooled_runs
        from mnistlab.store.store import open_store

        root = spool or spool_root()
        folders = spooled_runs(root)
        if not folders:
            typer.echo(f"Nothing to sync: no spooled runs in {root}.")
            return
        stores, damaged = {}, []
        for folder in folders:
            try:
                record = read_spool(folder)
            except SpoolError as error:  # the others are still worth writing
                damaged.append(str(error))
                continue
            uri = tracking_uri or record.tracking_uri
            if uri not in stores:
                stores[uri] = open_store(uri, create=False)
            run_id = stores[uri].replay(record, folder / "files")
            shutil.rmtree(folder)
            typer.echo(f"{record.run_name} ({record.status}): written to {uri} as run {run_id}")
        if damaged:
            raise SpoolError(
                f"Synced {len(folders) - len(damaged)} run(s); {len(damaged)} spooled run(s) "
                f"were left in {root}, damaged: {'; '.join(damaged)}. Restore record.json from a "
                "backup, or delete the folder to give up that run (its config trains again at "
                "the next `mnistlab study`)."
            )
        typer.echo(f"Synced {len(folders)} run(s); {root} holds no more.")


def main() -> None:
    """The console entry (`mnistlab`, `python -m mnistlab`)."""
    import signal

    try:
        app()
    finally:
        # Once the command is over, a late Ctrl-C during interpreter shutdown (MLflow's and
        # torch's exit handlers) must not print a traceback over a finished command.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
