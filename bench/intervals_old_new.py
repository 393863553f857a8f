"""The paper study's three claims with the former and the present 95% interval side by side.

    .venv/bin/python bench/intervals_old_new.py [--seeds 10] [--tracking-uri URI]

Without --tracking-uri it builds the paper spec's study in a temporary SQLite store from
bench/synthetic_study.py (made-up but plausible runs, no training) and says so; with one, it
reads the stored paper study there. For each claim it prints the paired per-seed differences'
estimate, the interval shown until c0f7ee4 (a BCa bootstrap of the mean difference,
scipy.stats.bootstrap with its defaults, 9,999 resamples, random_state 0, percentile where BCa
degenerates: the former analysis.bootstrap_interval, rewritten here) and the interval shown now
(the exact sign-flip test inverted, from the study's own verdicts), with the exact p. Ratio
claims are computed on log ratios and shown as ratios, as both versions did.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from mnistlab.results.evidence import analyse
from mnistlab.stats.analysis import paired_differences, paired_values
from mnistlab.store.store import open_store

REPO = Path(__file__).resolve().parents[1]


def bca_interval(d: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The former bootstrap_interval (c0f7ee4:mnistlab/analysis.py)."""
    if len(d) < 2 or np.ptp(d) == 0:
        return float(d.mean()), float(d.mean())
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interval = stats.bootstrap(
                (d,), np.mean, confidence_level=confidence, method=method, random_state=0
            ).confidence_interval
        if math.isfinite(interval.low) and math.isfinite(interval.high):
            break
    return float(interval.low), float(interval.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.tracking_uri:
            store, source = open_store(args.tracking_uri), f"stored study at {args.tracking_uri}"
        else:
            import sys

            sys.path.insert(0, str(REPO / "bench"))
            from synthetic_study import build_study

            store = open_store(f"sqlite:///{folder}/mlflow.db")
            build_study(store, str(REPO / "experiments" / "paper.toml"), args.seeds)
            source = f"synthetic paper study, {args.seeds} seeds (bench/synthetic_study.py)"
        results = analyse(store, "paper")
        print(f"# {source}")
        print(
            "| claim | estimate | old: BCa bootstrap 95% | new: inverted exact test 95% | exact p |"
        )
        print("| --- | --- | --- | --- | --- |")
        for row in results.verdicts.itertuples():
            pairs = paired_values(results.runs, row.metric, row.baseline, row.variant)
            ratio = row.estimate_kind == "ratio"
            d = paired_differences(pairs, ratio)
            low, high = bca_interval(d)
            show = (lambda x: f"{math.exp(x):.4g}×") if ratio else (lambda x: f"{x:.4g}")
            new = (lambda x: f"{x:.4g}×") if ratio else (lambda x: f"{x:.4g}")
            censored = f" ({row.censored_pairs} censored)" if row.censored_pairs else ""
            print(
                f"| {row.statement} | {show(float(d.mean()))}{censored} | [{show(low)}, "
                f"{show(high)}] | [{new(row.ci_low)}, {new(row.ci_high)}] | {row.p_value:.3g} |"
            )


if __name__ == "__main__":
    main()
