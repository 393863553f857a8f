"""The saved view of a study's runs that mnistlab's links open in the MLflow UI."""

from __future__ import annotations

import json

import pytest
from mlflow.utils.validation import MAX_EXPERIMENT_TAG_VAL_LENGTH

from mnistlab.store.runs_view import runs_view_query, runs_view_tag


def test_the_view_groups_runs_by_arm_with_every_group_open():
    key, value = runs_view_tag(["cnn2", "cnn3"], 1_700_000_000_000)
    assert key == "mlflow.sharedViewState.mnistlab-arms"
    assert runs_view_query() == "viewStateShareKey=mnistlab-arms"  # the key, after the prefix
    envelope = json.loads(value)  # MLflow's saved-view envelope: the state is a JSON string
    assert envelope["name"] and envelope["createdAt"] == 1_700_000_000_000
    state = json.loads(envelope["state"])
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "arm"}]
    # Each arm's group by the UI's id (mode.key.value), and the rest: the study run.
    assert state["groupsExpanded"] == {"tag.arm.cnn2": True, "tag.arm.cnn3": True, "tag.arm": True}
    assert state["orderByKey"] == "tags.`mlflow.runName`" and state["orderByAsc"] is True
    assert state["runsHiddenMode"] == "SHOW_ALL"  # every run charted, not the first ten
    # The UI ignores a shared view's fold state; none is written that would look like it works.
    assert not {"runsExpanded", "runsPinned", "runsHidden"} & set(state)


def test_the_view_fits_a_tag_and_refuses_arms_that_would_not():
    many = [f"arm{i:03d}" for i in range(200)]
    assert len(runs_view_tag(many, 0)[1]) <= MAX_EXPERIMENT_TAG_VAL_LENGTH
    with pytest.raises(ValueError, match="shorter arm names"):
        runs_view_tag([f"{'a' * 200}{i}" for i in range(200)], 0)
