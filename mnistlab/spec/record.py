"""A study spec as stored with the study: a versioned, TOML-shaped record (one MLflow tag, so
spec.limits.MAX_RECORD_CHARACTERS at most), and the older formats read back as TOML documents.
"""

from __future__ import annotations

from typing import Any

from mnistlab.spec.ranking import ranking_record
from mnistlab.spec.run import ConfigError
from mnistlab.spec.study import DEFAULT_THRESHOLDS, StudySpec

# The stored spec's format. 1: models + overrides, the paper's claims (before arms existed);
# 2: arms, dataset, claims, question.
SPEC_RECORD_VERSION = 2


def to_record(spec: StudySpec) -> dict[str, Any]:
    """The spec as stored with the study: a TOML-shaped document plus its format version."""
    return (
        {
            "version": SPEC_RECORD_VERSION,
            "name": spec.name,
            "description": spec.description,
            "question": spec.question,
            "dataset": spec.dataset,
            # A count when the seeds are 0..n-1 (always so with [adaptive]): the record
            # must fit in an MLflow tag, and a thousand seeds listed would not.
            "seeds": len(spec.seeds)
            if spec.seeds == tuple(range(len(spec.seeds)))
            else list(spec.seeds),
            "baseline": spec.baseline,
            "settings": dict(spec.settings),
            "arms": {arm.name: {"model": arm.model, **arm.settings} for arm in spec.arms},
            "thresholds": list(spec.thresholds),
            "primary_threshold": spec.primary_threshold,
            "claims": [
                {"metric": c.metric, "direction": c.direction}
                | ({} if c.margin is None else {"margin": c.margin})
                | ({} if c.effect is None else {"effect": c.effect})
                for c in spec.claims
            ],
            "source": spec.source,
        }
        | ({"strict": True} if spec.strict else {})
        | ranking_record(spec.ranking)
        | (
            {"dataset_sha256": spec.dataset_sha256, "dataset_source": spec.dataset_source}
            if spec.dataset_sha256
            else {}
        )
        | (
            {}
            if spec.adaptive is None
            else {"adaptive": {"max_seeds": spec.adaptive.max_seeds, "block": spec.adaptive.block}}
        )
    )


def record_document(record: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as the TOML document it was read from, whatever version of mnistlab stored it."""
    version = record.get("version", 1)
    if version == 1:  # before arms: one arm per model
        keys = ("name", "description", "models", "seeds", "settings", "overrides")
        document = {key: record[key] for key in keys if record.get(key) not in (None, {})}
        document["thresholds"] = record.get("thresholds", list(DEFAULT_THRESHOLDS))
        document["primary_threshold"] = record.get("primary_threshold", 0.95)
    elif version == SPEC_RECORD_VERSION:
        document = {k: v for k, v in record.items() if k not in ("version", "source")}
    else:
        raise ConfigError(
            f"The stored spec of study {record.get('name')!r} has format version {version}, "
            f"newer than this mnistlab reads ({SPEC_RECORD_VERSION}). Upgrade mnistlab."
        )
    return document
