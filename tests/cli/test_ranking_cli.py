"""A three-arm study that asks for a ranking, end to end on tiny data: `analyze` prints it and
`report` puts it in the report and on the MLflow study run."""

import json
from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import invoke

SPEC = """
name = "ranked"
seeds = 2
thresholds = [0.2]
compare = "all-pairs"
[settings]
train_size = 200
batch_size = 40
eval_every = 2
eval_subset = 100
threads = 1
[arms.base]
model = "cnn2"
[arms.deeper]
model = "cnn3"
[arms.faster]
model = "cnn2"
lr = 0.003
[[claims]]
metric = "test_accuracy"
direction = "higher"
"""


def test_a_ranked_study_is_ranked_by_analyze_in_the_report_and_on_the_study_run(
    tmp_path, tiny_mnist_dir, store_uri, unverified
):
    spec = tmp_path / "ranked.toml"
    spec.write_text(SPEC)
    common = ("--tracking-uri", store_uri)
    assert invoke("study", str(spec), "--data-dir", str(tiny_mnist_dir), *common).exit_code == 0
    analyzed = invoke("analyze", "ranked", *common)
    assert analyzed.exit_code == 0, analyzed.output
    out = " ".join(analyzed.output.split())
    assert "Ranking on final test accuracy (higher is better), 2 seeds as blocks" in out
    assert "Holm over all 3 pairs" in out and "Friedman" in out
    out_dir = tmp_path / "reports"
    reported = invoke(
        "report", "ranked", "--out", str(out_dir), "--data-dir", str(tiny_mnist_dir), *common
    )
    assert reported.exit_code == 0, reported.output
    html = (out_dir / "ranked" / "index.html").read_text()
    assert '<h3 id="ranking">' in html and 'id="ranking-figure"' in html
    assert (out_dir / "ranked" / "ranking.csv").is_file()
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("ranked")
    (study,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("mnistlab.role") == "study"
    ]
    tags = study.data.tags
    assert set(tags["ranking/order"].split(", ")) == {"base", "deeper", "faster"}
    assert "## Ranking on final test accuracy" in tags["mlflow.note.content"]
    document = json.loads(
        Path(
            client.download_artifacts(study.info.run_id, "ranking.json", str(tmp_path / "d"))
        ).read_text()
    )
    assert document["order"] == tags["ranking/order"].split(", ") and len(document["pairs"]) == 3
    # two seeds cannot rank any pair apart under Holm over three pairs
    assert {p["verdict"] for p in document["pairs"]} == {"no difference shown"}
