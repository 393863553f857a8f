"""Reading a spec's ranking request: compare = "all-pairs" or a [ranking] table.

compare = "all-pairs" ranks the arms on the first claim that says which way is better (higher
or lower); a [ranking] table names the metric and which way is better itself. Either needs
three or more arms: two arms are one comparison, which a claim already makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnistlab.names import ranking_tag_key
from mnistlab.spec.limits import MLFLOW_KEY_LIMIT
from mnistlab.spec.measures import HIGHER, LOWER, UnknownMeasure, measure
from mnistlab.spec.run import ConfigError
from mnistlab.spec.study import Claim, RankBy

ALL_PAIRS = "all-pairs"
BASELINE = "baseline"  # the default: every variant against the baseline, no ranking
COMPARES = (BASELINE, ALL_PAIRS)
RANKING_KEYS = ("metric", "better")
MIN_ARMS = 3


def _error(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {reason}")


def parse_ranking(
    path: Path, data: dict[str, Any], arm_names: list[str], claims: tuple[Claim, ...]
) -> RankBy | None:
    """The spec's RankBy, or None when it asks for no ranking; ConfigError names the fix."""
    compare = data.get("compare", BASELINE)
    if compare not in COMPARES:
        raise _error(
            path,
            "compare",
            f"unknown value {compare!r}. Known: {', '.join(repr(c) for c in COMPARES)} "
            '("all-pairs" ranks the arms and tests every pair under one Holm family).',
        )
    table = data.get("ranking")
    if compare != ALL_PAIRS and table is None:
        return None
    _check_rankable(path, data, arm_names, table is not None)
    if table is None:
        return _rank_by_first_ordered_claim(path, claims)
    return _parse_ranking_table(path, table)


def _check_rankable(
    path: Path, data: dict[str, Any], arm_names: list[str], has_table: bool
) -> None:
    """Refuse a ranking of fewer than three arms, with [adaptive], or over MLflow's key limit."""
    key = "ranking" if has_table else "compare"
    asked = "the [ranking] table" if has_table else 'compare = "all-pairs"'
    if len(arm_names) < MIN_ARMS:
        raise _error(
            path,
            key,
            f"a ranking compares every pair of three or more arms, and this spec has "
            f"{len(arm_names)} ({', '.join(arm_names)}). With two arms there is one pair, "
            "which the claims already test against the baseline: remove "
            f"{asked}, or "
            "add a third arm to rank.",
        )
    if "adaptive" in data:
        raise _error(
            path,
            key,
            "a ranking is tested once, on all of the study's seeds, and an [adaptive] design "
            "adds seeds until its claims are decided, spending alpha over its looks on those "
            "claims alone: a ranking read at its last look would not keep its error rate. "
            "Remove [adaptive] (give seeds = COUNT) or the ranking.",
        )
    for arm in arm_names:
        key_name = ranking_tag_key("mean_rank", arm)
        if len(key_name) > MLFLOW_KEY_LIMIT:
            raise _error(
                path,
                f"arms.{arm}",
                f"the arm name is {len(arm)} characters, and the ranking writes it under the "
                f"MLflow key '{key_name[:30]}...', {len(key_name)} characters, over MLflow's "
                f"limit of {MLFLOW_KEY_LIMIT}. Shorten the arm name to at most "
                f"{MLFLOW_KEY_LIMIT - len(key_name) + len(arm)} characters.",
            )


def _rank_by_first_ordered_claim(path: Path, claims: tuple[Claim, ...]) -> RankBy:
    """compare = "all-pairs" without a table: rank on the first claim with a better direction."""
    ordered = [c for c in claims if c.direction in (HIGHER, LOWER)]
    if not ordered:
        raise _error(
            path,
            "compare",
            '"all-pairs" ranks the arms on the first claim that says which way is better '
            "(direction higher or lower), and this spec has none. Add a [ranking] table "
            'naming the metric and which way is better, e.g. metric = "test_accuracy", '
            'better = "higher".',
        )
    return RankBy(ordered[0].metric, ordered[0].direction)


def _parse_ranking_table(path: Path, table: Any) -> RankBy:  # noqa: ANN401
    """The [ranking] table's metric and better direction, each checked."""
    if not isinstance(table, dict):
        raise _error(
            path, "ranking", 'must be a table: [ranking] metric = "...", better = "higher".'
        )
    unknown = sorted(set(table) - set(RANKING_KEYS))
    if unknown:
        raise _error(
            path, f"ranking.{unknown[0]}", f"unknown key. Known: {', '.join(RANKING_KEYS)}."
        )
    for name in RANKING_KEYS:
        if name not in table:
            raise _error(path, f"ranking.{name}", "is required.")
    try:
        metric = measure(table["metric"]).name
    except UnknownMeasure as error:
        raise _error(path, "ranking.metric", str(error)) from None
    if table["better"] not in (HIGHER, LOWER):
        raise _error(
            path,
            "ranking.better",
            f"must be {HIGHER!r} or {LOWER!r} (which values of {metric} are better), "
            f"got {table['better']!r}.",
        )
    return RankBy(metric, table["better"])


def ranking_record(ranking: RankBy | None) -> dict[str, Any]:
    """The request as stored with the spec (spec.record): a [ranking] table, or nothing."""
    return (
        {} if ranking is None else {"ranking": {"metric": ranking.metric, "better": ranking.better}}
    )
