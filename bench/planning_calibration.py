"""Seeds planned from noisy pilots, and the true power of the studies sized by them.

    .venv/bin/python bench/planning_calibration.py [--pilots 100] [--effect 1.0] [--family 3]

Pilots of 5, 10 and 20 seeds are drawn from normal differences at d_z = effect; each is planned
with the real code (planning.plan_seeds: resampling, the exact test, Holm over `family` tests),
once with the pilot's SD as it is (the former rule) and once at its 80% upper confidence bound
(the rule `mnistlab power --effect` uses). Each plan's true power is the exact test's power at
that many seeds on the true normal differences (planning.true_power). Prints the distribution
of plans and of true powers; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mnistlab.stats.planning import PLANNING_LEVEL, simulate_pilots, true_power


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilots", type=int, default=100)
    parser.add_argument("--effect", type=float, default=1.0)
    parser.add_argument("--family", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    powers: dict[int, float] = {}
    rows = []
    for pilot in (5, 10, 20):
        for rule, level in (
            ("pilot SD", None),
            (f"SD at its {PLANNING_LEVEL:.0%} bound", PLANNING_LEVEL),
        ):
            plans = simulate_pilots(pilot, args.effect, args.pilots, args.family, level, seed=pilot)
            power = np.array(
                [
                    powers.setdefault(c, true_power(c, args.effect, args.family, 10_000))
                    if c
                    else 1.0  # no count on the grid: not a study that falls short
                    for c in plans
                ]
            )
            rows.append(
                {
                    "pilot_seeds": pilot,
                    "rule": rule,
                    "plan_median": float(np.median(plans)),
                    "plan_quartiles": [float(q) for q in np.percentile(plans, [25, 75])],
                    "true_power_median": float(np.median(power)),
                    "true_power_quartiles": [float(q) for q in np.percentile(power, [25, 75])],
                    "share_below_80": float((power < 0.8).mean()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    needed = min(
        c for c, p in powers.items() if p >= 0.8 and all(powers[k] >= 0.8 for k in powers if k > c)
    )
    print(
        json.dumps(
            {
                "pilots": args.pilots,
                "effect_dz": args.effect,
                "family": args.family,
                "true_power_by_seeds": {str(c): round(p, 4) for c, p in sorted(powers.items())},
                "true_power_12_to_16": {
                    str(c): round(true_power(c, args.effect, args.family, 10_000), 4)
                    for c in range(11, 17)
                },
                "true_seeds_for_80": needed,
                "seconds": time.perf_counter() - start,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
