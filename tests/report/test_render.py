"""Reports from tiny studies trained in the test: HTML and PDF with every section."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from pypdf import PdfReader

from mnistlab.report.demo import predict_test_set
from mnistlab.report.render import write_report
from mnistlab.results.evidence import AnalysisError, analyse
from mnistlab.spec.parse import parse_spec
from mnistlab.store.store import open_store
from mnistlab.study.run import run_study
from tests.conftest import SECTIONS, TINY_SETTINGS, invoke, refused

RENDER_SETTINGS = {"train_size": 200, "batch_size": 10, "eval_every": 4, "eval_subset": 100}


def tiny_study(tmp_path, tiny_mnist, store_uri, models=("cnn2", "cnn3"), seeds=2, **keys):
    arms = {} if "arms" in keys else {"models": list(models)}
    spec = parse_spec(
        {
            "name": "tiny",
            **arms,
            "seeds": seeds,
            "thresholds": [0.2, 0.5],
            "settings": RENDER_SETTINGS,
            **keys,
        },
        tmp_path / "tiny.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    return open_store(store_uri)


def test_report_has_every_section_in_html_and_a_paginated_pdf(tmp_path, tiny_mnist, store_uri):
    client = tiny_study(tmp_path, tiny_mnist, store_uri)
    results = analyse(client, "tiny")
    demo, note = predict_test_set(results, client, tmp_path / "no-data")
    paths = write_report(results, demo, note, tmp_path / "reports")
    html = paths.html.read_text()
    for section in SECTIONS:
        assert section in html
    assert html.count('<img src="data:image/png;base64,') == 7  # self-contained figures
    for run_id in results.runs["run_id"]:
        assert run_id in html
    assert demo is None and "The demo is missing" in html  # no MNIST here: said, not crashed
    assert "only 2 paired seed" in html
    pdf = PdfReader(paths.pdf)
    assert len(pdf.pages) >= 4
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Verdicts" in text and "Limits of this study" in text
    assert {p.name for p in paths.tables} == {
        "runs.csv",
        "verdicts.csv",
        "secondary.csv",
        "summary.csv",
        "wall_clock.csv",
        "power.csv",
    }
    assert "raw rolling SD of the train loss" in html
    assert not list((tmp_path / "reports" / "tiny").glob(".*tmp"))


def test_a_one_model_study_still_renders_and_says_why_there_is_no_verdict(
    tmp_path, tiny_mnist, store_uri
):
    client = tiny_study(tmp_path, tiny_mnist, store_uri, models=("cnn2",))
    results = analyse(client, "tiny")
    assert results.verdicts.empty
    html = write_report(results, None, "", tmp_path / "reports").html.read_text()
    assert "nothing to compare" in html


def test_runs_with_missing_metrics_are_excluded_and_named(tmp_path, tiny_mnist, store_uri):
    client = tiny_study(tmp_path, tiny_mnist, store_uri)
    raw = client.client
    experiment_id = raw.get_experiment_by_name("tiny").experiment_id
    good = next(r for r in raw.search_runs([experiment_id]) if r.info.run_name == "cnn3-s1")
    # A later run of the same config that logged nothing, e.g. written by hand.
    tags = {**good.data.tags, "mlflow.runName": "cnn3-s1-broken"}
    broken = raw.create_run(experiment_id, tags=tags)
    raw.set_terminated(broken.info.run_id, "FINISHED")
    results = analyse(client, "tiny")
    assert results.excluded == [
        (
            "cnn3-s1-broken",
            "missing metrics: train_loss, eval_accuracy, epoch_train_seconds, test_accuracy",
        )
    ]
    assert (results.verdicts["n"] == 1).all()
    html = write_report(results, None, "", tmp_path / "reports").html.read_text()
    assert "Excluded runs: cnn3-s1-broken (missing metrics" in html


def test_an_unknown_study_lists_the_known_ones(tmp_path, tiny_mnist, store_uri):
    client = tiny_study(tmp_path, tiny_mnist, store_uri)
    with pytest.raises(AnalysisError, match="No study called 'nope'.*Known: tiny"):
        analyse(client, "nope")


def test_a_failed_render_leaves_no_report_behind(tmp_path, tiny_mnist, store_uri, monkeypatch):
    import weasyprint

    client = tiny_study(tmp_path, tiny_mnist, store_uri)
    results = analyse(client, "tiny")

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("renderer crashed")

    monkeypatch.setattr(weasyprint, "HTML", Broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_report(results, None, "", tmp_path / "reports")
    assert not (tmp_path / "reports" / "tiny").exists() or not any(
        (tmp_path / "reports" / "tiny").iterdir()
    )


def test_verdict_numbers_agree_with_the_raw_mlflow_histories(tmp_path, tiny_mnist, store_uri):
    client = tiny_study(tmp_path, tiny_mnist, store_uri)
    results = analyse(client, "tiny")
    raw = MlflowClient(store_uri)
    for row in results.runs.to_dict("records"):
        accuracy = raw.get_metric_history(row["run_id"], "eval_accuracy")
        first = next((m.step for m in accuracy if m.value >= 0.5), accuracy[-1].step)
        assert row["steps_to_0.5"] == first
        (seconds,) = raw.get_metric_history(row["run_id"], "epoch_train_seconds")
        assert row["epoch_train_seconds"] == seconds.value


def test_a_study_of_other_arms_is_not_told_as_the_papers_story(tmp_path, tiny_mnist, store_uri):
    arms = {"base": {"model": "cnn2"}, "fast": {"model": "cnn2", "lr": 0.003}}
    store = tiny_study(tmp_path, tiny_mnist, store_uri, arms=arms)
    results = analyse(store, "tiny")
    html = write_report(results, None, "", tmp_path / "reports").html.read_text()
    assert "<h1>fast against base</h1>" in html and "third convolution" not in html
    assert "the first 100 test images" in " ".join(html.split())  # the spec's, not the paper's


def test_a_fashion_study_names_fashion_mnist_wherever_it_names_the_data(
    tmp_path, tiny_mnist, store_uri
):
    fashion = dataclasses.replace(tiny_mnist, dataset="fashion-mnist")
    store = tiny_study(tmp_path, fashion, store_uri, dataset="fashion-mnist")
    results = analyse(store, "tiny")
    html = " ".join(write_report(results, None, "", tmp_path / "r").html.read_text().split())
    assert (
        "cnn2 vs cnn3 on Fashion-MNIST" in html
        and "with the baseline <b>cnn2</b> on Fashion-MNIST" in html
    )
    assert "100 Fashion-MNIST test images" in html and "one data set (Fashion-MNIST)" in html
    assert "as in the paper" not in html  # 100 evaluation images, not the paper's 2,000
    run = store.client.get_run(results.runs["run_id"].iloc[0])
    assert run.data.tags["dataset"] == "fashion-mnist"
    assert run.inputs.dataset_inputs[0].dataset.name == "fashion-mnist-train"


def test_a_store_written_before_arms_existed_reports_the_same_numbers(
    tmp_path, tiny_mnist, store_uri
):
    store = tiny_study(tmp_path, tiny_mnist, store_uri, seeds=3)
    now = analyse(store, "tiny")
    html_now = write_report(now, None, "", tmp_path / "now").html.read_text()
    # Turn the store into what the previous mnistlab wrote: the version-1 spec record
    # (dataclasses.asdict of the old StudySpec plus the baseline) and runs without arm tags.
    raw = store.client
    experiment = raw.get_experiment_by_name("tiny")
    old_record = {
        "name": "tiny",
        "models": ["cnn2", "cnn3"],
        "seeds": [0, 1, 2],
        "settings": RENDER_SETTINGS,
        "overrides": {},
        "thresholds": [0.2, 0.5],
        "primary_threshold": 0.2,
        "description": "",
        "source": str(tmp_path / "tiny.toml"),
        "baseline": "cnn2",
    }
    raw.set_experiment_tag(experiment.experiment_id, "spec", json.dumps(old_record))
    for run in raw.search_runs([experiment.experiment_id]):
        if "arm" not in run.data.tags:
            continue  # the study run
        raw.delete_tag(run.info.run_id, "arm")
        raw.delete_tag(run.info.run_id, "dataset")
    before = analyse(store, "tiny")
    html_before = write_report(before, None, "", tmp_path / "before").html.read_text()
    numbers = ["n", "estimate", "ci_low", "ci_high", "p_value", "p_holm", "verdict"]
    pd.testing.assert_frame_equal(before.verdicts[numbers], now.verdicts[numbers])
    pd.testing.assert_frame_equal(before.summary, now.summary)
    assert [s for s in SECTIONS if s in html_before] == SECTIONS
    strip = re.compile(r"generated [^<]*by mnistlab")  # the time of rendering
    assert strip.sub("", html_before) == strip.sub("", html_now)


def test_the_demo_reads_stored_predictions_and_older_runs_are_predicted_from_weights(
    tmp_path, tiny_mnist, tiny_mnist_dir, store_uri, unverified, monkeypatch
):
    store = tiny_study(tmp_path, tiny_mnist, store_uri)
    results = analyse(store, "tiny")
    stored, note = predict_test_set(results, store, tiny_mnist_dir)
    assert note == "" and set(stored.predictions) == {"cnn2", "cnn3"}
    # A run from before predictions were stored: the weights give the same labels.
    monkeypatch.setattr(type(store), "download_predictions", lambda self, run_id, folder: None)
    recomputed, _ = predict_test_set(results, store, tiny_mnist_dir)
    for arm, labels in stored.predictions.items():
        assert labels.dtype == recomputed.predictions[arm].dtype
        assert (labels == recomputed.predictions[arm]).all()
    assert (stored.images == recomputed.images).all() and (stored.labels == recomputed.labels).all()
    # Predictions stored for other test files (another size) are not used for these images.
    other = tmp_path / "other.npy"
    np.save(other, np.zeros(5, dtype=np.uint8))
    monkeypatch.setattr(type(store), "download_predictions", lambda self, run_id, folder: other)
    mismatched, _ = predict_test_set(results, store, tiny_mnist_dir)
    for arm, labels in recomputed.predictions.items():
        assert (mismatched.predictions[arm] == labels).all()


def test_report_checks_its_destination_before_rendering(in_tmp, store_uri, monkeypatch):
    """Refused before any work: nothing is analysed, rendered or published."""
    import mnistlab.cli.app
    import mnistlab.report.publish
    import mnistlab.report.render

    def must_not(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} before the destination was checked")

        return fail

    monkeypatch.setattr(mnistlab.cli.app, "_results", must_not("analysed"))
    monkeypatch.setattr(mnistlab.report.render, "write_report", must_not("rendered"))
    monkeypatch.setattr(mnistlab.report.publish, "publish_report", must_not("published"))
    (in_tmp / "afile").write_text("x")
    refused(
        invoke("report", "paper", "--out", str(in_tmp / "afile"), "--tracking-uri", store_uri),
        "is a file",
    )
    (in_tmp / "reports").mkdir()
    (in_tmp / "reports" / "paper").write_text("the user's notes")  # where the report would go
    for command in ("report", "fetch-report"):
        refused(
            invoke(command, "paper", "--tracking-uri", store_uri),
            "reports/paper is a file, and the report of 'paper' would replace it",
        )
    assert (in_tmp / "reports" / "paper").read_text() == "the user's notes"


def test_a_report_replaces_the_whole_set_never_leaving_old_files(tmp_path, tiny_mnist, store_uri):
    from mnistlab.report.render import write_report

    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": TINY_SETTINGS},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    folder = tmp_path / "reports" / "tiny"
    (folder / "report.pdf").mkdir(parents=True)  # in the way of the new file
    (folder / "stale.csv").write_text("old")
    paths = write_report(analyse(open_store(store_uri), "tiny"), None, "", tmp_path / "reports")
    assert paths.pdf.is_file() and not (folder / "stale.csv").exists()
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["tiny"]  # no staging left


def test_the_setup_says_only_what_mnistlab_could_see_of_the_machines_load(monkeypatch):
    from mnistlab.report.sections import setup_facts
    from tests.report.synthetic import synthetic_results

    claims = [{"metric": "test_accuracy", "direction": "higher"}]
    values = {"base": [(500, 0.01, 0.97)] * 3, "var": [(450, 0.01, 0.98)] * 3}
    alone = setup_facts(synthetic_results(monkeypatch, claims, values))["Timings"]
    assert alone.startswith("no overlap seen") and "other stores" in alone
    assert "clean" not in alone  # runs in other stores may have shared the machine
    shared = synthetic_results(monkeypatch, claims, values, contended={"var-s1"})
    assert setup_facts(shared)["Timings"].startswith("some runs shared the machine")
