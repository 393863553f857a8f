"""A study's ranking, when its spec asks for one (spec.ranking): stats.ranking on the study's
usable runs, timings of contended runs left out as for the claims (evidence.clean_timings)."""

from __future__ import annotations

from mnistlab.results.evidence import StudyResults, clean_timings
from mnistlab.stats.ranking import MIN_ARMS, Ranking, rank_arms


def study_ranking(results: StudyResults) -> Ranking | None:
    """The ranking of the arms with usable runs; None when the spec asks for none, or fewer
    than three arms have runs (ranking_gap says why)."""
    request = results.spec.ranking
    if request is None or len(results.arms) < MIN_ARMS or results.runs.empty:
        return None
    table, _ = clean_timings(results.runs)
    return rank_arms(table, list(results.arms), request.metric, request.better)


def ranking_gap(results: StudyResults) -> str:
    """Why an asked-for ranking is missing ('' when there is one or none was asked for)."""
    request = results.spec.ranking
    if request is None or len(results.arms) >= MIN_ARMS:
        return ""
    return (
        f"The spec asks for a ranking on {request.metric}, but only {len(results.arms)} arm(s) "
        f"have usable runs ({', '.join(results.arms) or 'none'}): a ranking needs {MIN_ARMS}. "
        "Run `mnistlab study` to train the missing arms."
    )
