"""The view of a study's runs that mnistlab's links open in the MLflow UI: the runs grouped
by arm, every group open, the Chart view plotting each arm's mean over its seeds.

Why a saved view: MLflow 3.17's UI keeps a runs page's table state in the browser's local
storage, so a fresh browser opens an experiment with the study run folded; its children, and
with them every training chart, stay hidden (the Chart view plots only the rows the table
shows). The one state a link can carry is a saved view: an experiment tag
`mlflow.sharedViewState.<key>` opened by the URL parameter `viewStateShareKey=<key>`. Its
state cannot unfold a run (the UI drops `runsExpanded`, `runsPinned` and `runsHidden` from
a shared state), but it can group the runs by their `arm` tag and open the groups, which
shows every training run, and the study run under "Additional runs".

Source of the shapes: MLflow's `savedViewEnvelope.ts` (the tag value: name, createdAt and
the state as a JSON string), `ExperimentPageUIState.ts` and `experimentPage.group-row-utils.ts`
(groupBy, a group's id `tag.<key>.<value>`, the rest `tag.<key>`), as built into 3.17.2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mnistlab.names import ARM_TAG, RUN_NAME_TAG, RUNS_VIEW_KEY, RUNS_VIEW_NAME, VIEW_TAG_PREFIX

TAG_KEY = VIEW_TAG_PREFIX + RUNS_VIEW_KEY
MAX_VALUE_LENGTH = 20_000  # MLflow's limit on an experiment tag's value (validation.py)
# Sorted by run name: the baseline's group and seed 0 first (the default sort is newest
# first), and, should a reader ungroup, a flat list where nothing is folded.
RUN_NAME_ORDER = f"tags.`{RUN_NAME_TAG}`"  # no mlflow import: the CLI starts without it


def runs_view_state(arms: Sequence[str]) -> dict:
    """The runs page's state: search facets and table state, one flat dict as MLflow's share
    link serialises it. `arms`: the arm names, as runs carry them in their `arm` tag."""
    group = f"tag.{ARM_TAG}"
    return {
        "orderByKey": RUN_NAME_ORDER,
        "orderByAsc": True,
        "groupBy": {
            "aggregateFunction": "average",
            "groupByKeys": [{"mode": "tag", "groupByData": ARM_TAG}],
        },
        # Every arm's group open, and the group of runs without an arm: the study run.
        "groupsExpanded": {f"{group}.{arm}": True for arm in arms} | {group: True},
        # The Chart view plots every row, not only the first ten (the default).
        "runsHiddenMode": "SHOW_ALL",
        "useGroupedValuesInCharts": True,
    }


def runs_view_tag(arms: Sequence[str], created_ms: int) -> tuple[str, str]:
    """(key, value) of the experiment tag holding the view; `created_ms`: when it was
    written (ms since the epoch), shown in the UI's Views menu.

    Raises ValueError if the value would exceed MLflow's limit on a tag's value (it grows
    only with the arms' names).
    """
    envelope = {
        "name": RUNS_VIEW_NAME,
        "createdAt": created_ms,
        "state": json.dumps(runs_view_state(arms)),
    }
    value = json.dumps(envelope)
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(
            f"The MLflow UI view of {len(arms)} arms takes {len(value)} characters, more than "
            f"MLflow's {MAX_VALUE_LENGTH} for a tag. Use shorter arm names."
        )
    return TAG_KEY, value


def runs_view_query() -> str:
    """The runs page's URL parameter that opens the view."""
    return f"viewStateShareKey={RUNS_VIEW_KEY}"
