"""A study of three arms with declared claims, through the command line to HTML and PDF."""

from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from tests.conftest import SECTIONS, holm_by_hand, invoke

THREE_ARMS = """
name = "three"
description = "Three arms on tiny data."
seeds = 3
thresholds = [0.2, 0.3]
[settings]
train_size = 200
batch_size = 20
eval_every = 2
eval_subset = 100
device = "cpu"
threads = 1
[arms.base]
model = "cnn2"
[arms.fast]
model = "cnn2"
lr = 0.003
[arms.deep]
model = "cnn3"
[[claims]]
metric = "test_accuracy"
direction = "higher"
[[claims]]
metric = "seconds_to:0.3"
direction = "lower"
[[claims]]
metric = "final_train_loss"
direction = "lower"
"""


def test_three_arms_study_report_and_analyze_through_the_cli(
    tmp_path, tiny_mnist_dir, store_uri, unverified
):
    spec = tmp_path / "three.toml"
    spec.write_text(THREE_ARMS)
    common = ("--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri)
    study = invoke("study", str(spec), *common)
    assert study.exit_code == 0, study.output
    assert "9 runs" in study.output and "deep-s2" in study.output
    report = invoke("report", "three", "--out", str(tmp_path / "reports"), *common)
    assert report.exit_code == 0, report.output

    verdicts = pd.read_csv(tmp_path / "reports" / "three" / "verdicts.csv")
    assert list(zip(verdicts["variant"], verdicts["claim"], strict=True)) == [
        (variant, claim)
        for variant in ("fast", "deep")
        for claim in ("test_accuracy", "seconds_to:0.3", "final_train_loss")
    ]
    assert (verdicts["baseline"] == "base").all() and (verdicts["n"] == 3).all()
    assert verdicts["p_holm"].tolist() == pytest.approx(holm_by_hand(verdicts["p_value"].tolist()))
    assert set(verdicts["verdict"]) == {"inconclusive"}  # 3 seeds cannot decide 6 tests

    html = (tmp_path / "reports" / "three" / "index.html").read_text()
    for section in SECTIONS:
        assert section in html
    assert "fast against base" in html and "deep against base" in html
    assert "family of 6 test(s)" in html and "at least 8 paired seeds" in html
    assert "fast (model cnn2, lr = 0.003)" in html and "deep (model cnn3)" in html
    assert "Does a third convolution help?" in html  # deep (cnn3) against base (cnn2)
    assert "fast reaches a higher final test accuracy than base" in html
    pdf = " ".join(p.extract_text() for p in PdfReader(tmp_path / "reports/three/report.pdf").pages)
    assert "deep against base" in pdf
    analyze = invoke("analyze", "three", "--tracking-uri", store_uri)
    assert analyze.exit_code == 0
    text = " ".join(analyze.output.split())
    assert "fast against base" in text and "deep against base" in text
    assert "Holm's correction over 6 test(s)" in text and "at least 8 paired seeds" in text


BAD_SPECS = {
    "both": THREE_ARMS.replace("seeds = 3", 'seeds = 3\nmodels = ["cnn2"]'),
    "twins": THREE_ARMS.replace("lr = 0.003", "lr = 0.001"),
    "metric": THREE_ARMS.replace('"final_train_loss"', '"final_loss"'),
    "threshold": THREE_ARMS.replace('"seconds_to:0.3"', '"seconds_to:1.3"'),
    "direction": THREE_ARMS.replace('direction = "higher"', 'direction = "more"'),
    "dataset": 'dataset = "cifar10"\n' + THREE_ARMS,
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_bad_spec_is_one_paragraph_exit_2_and_writes_nothing(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tmp_path / f"{case}.toml"
    spec.write_text(BAD_SPECS[case])
    result = invoke("study", str(spec))
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.output.count("Error:") == 1
    assert str(spec) in " ".join(result.output.replace("\n", "").split())
    assert not (tmp_path / "mlflow.db").exists()


def test_a_study_on_a_missing_dataset_names_it_and_writes_nothing(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(
        torchvision.datasets, "FashionMNIST", lambda *a, **k: (_ for _ in ()).throw(OSError())
    )
    monkeypatch.chdir(tmp_path)
    spec = Path(__file__).resolve().parents[2] / "experiments" / "fashion.toml"
    (tmp_path / "empty").mkdir()  # there, but without the dataset
    result = invoke("study", str(spec), "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "Fashion-MNIST is not in" in result.output and "FashionMNIST" in result.output
    assert not (tmp_path / "mlflow.db").exists()
