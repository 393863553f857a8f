"""The clock's measures: contended runs left out of them, train time to each threshold.

Times measure the arm only when a run had its host to itself (store.liveness marks the others
contended); every timing measure (spec.measures.TIMING) is blanked for the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.results import notes as caveats
from mnistlab.spec.measures import LOWER, TIMING
from mnistlab.spec.study import Claim, StudySpec
from mnistlab.stats.analysis import paired_evidence
from mnistlab.stats.censored import median_interval


def clean_timings(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The run table with the clock's measures blanked for contended runs, and a note.

    A run is contended when another live run on its host overlapped it (liveness.py): its
    times measure the sharing, not the arm. Timing claims and timing comparisons are then
    tested on the seeds whose two runs both ran alone; with too few, the verdict is
    inconclusive and the note says why.
    """
    if table.empty or not table[names.CONTENDED_TAG].any():
        return table, ""
    # The clock's columns, claimed or not: named after measures.TIMING (seconds_to_0.95 ...).
    columns = [c for c in table.columns if c.startswith(TIMING)]
    clean = table.copy()
    clean.loc[clean[names.CONTENDED_TAG], columns] = np.nan
    return clean, caveats.contended(table)


def wall_clock(table: pd.DataFrame, arms: list[str], thresholds: list[float]) -> pd.DataFrame:
    """Train seconds to each threshold per arm: median and a 95% order-statistic interval
    over seeds, a run that never reached it counted as not reached (infinite)."""
    rows = []
    for arm in arms:
        group = table[table[names.ARM_TAG] == arm]
        for threshold in thresholds:
            reached = (
                group[names.threshold_column(names.REACHED, threshold)].astype(bool).to_numpy()
            )
            seconds = group[names.threshold_column(names.SECONDS_TO, threshold)].to_numpy(float)
            median, low, high = median_interval(np.where(reached, seconds, np.inf))
            rows.append(
                {
                    "arm": arm,
                    "threshold": threshold,
                    "runs": len(group),
                    "not_reached": int((~reached).sum()),
                    "median_seconds": median,
                    "low": low,
                    "high": high,
                    "median_steps": float(
                        np.median(
                            np.where(
                                reached,
                                group[names.threshold_column(names.STEPS_TO, threshold)],
                                np.inf,
                            )
                        )
                    ),
                }
            )
    return pd.DataFrame(rows)


def wall_clock_comparisons(
    table: pd.DataFrame, spec: StudySpec, variants: list[str]
) -> pd.DataFrame:
    """Descriptive (uncorrected) paired ratios of train seconds to each threshold: does a
    variant get there sooner on the clock? Censored pairs are handled as in the verdicts."""
    if table.empty or spec.baseline not in set(table["arm"]) or not variants:
        return pd.DataFrame()
    claims = [Claim(names.threshold_metric(names.SECONDS_TO, t), LOWER) for t in spec.thresholds]
    return paired_evidence(table, spec.baseline, variants, claims)
