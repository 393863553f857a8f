"""Seeds planned from noisy pilots, and the true power of the studies sized by them.

    .venv/bin/python bench/planning_calibration.py [--pilots 100] [--effect 1.0] [--family 3]
        [--levels 0.6 0.7 0.8] [--rules named observed]

Pilots of 5, 10 and 20 seeds are drawn from normal differences at d_z = effect; each is planned
with the real code (Holm over `family` tests), by two rules:
- named: the seeds for the true effect named (planning.plan_seeds), once with the pilot's SD as
  it is (the former rule) and once at its 80% upper confidence bound (`mnistlab power
  --effect`);
- observed: the seeds for the pilot's own effect (`mnistlab power`'s default), once at d_z's
  50% bound (its median-unbiased estimate, about the pilot's own d_z, through the same planner;
  not the former code) and once at d_z's lower confidence bound at each of `levels`
  (planning.plan_observed; EFFECT_LEVEL is the one in use).
Each plan's true power is the exact test's power at that many seeds on the true normal
differences (planning.true_power). Prints, per pilot size and rule, the distribution of plans
and of true powers over the studies the rule sized, and the share of pilots it could not size
(the bound at or below 0; their true power counted as 0 in true_power_median_all). A plan past
the grid's largest count ("> 60") is counted as power 1 and as 61 seeds in the plans' quartiles.
The README quotes it.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mnistlab.stats.planning import NOT_SIZED, PLANNING_LEVEL, simulate_pilots, true_power
from mnistlab.stats.power import SEED_GRID

FORMER = 0.5  # d_z's 50% bound, its median-unbiased estimate: about the pilot's own d_z
BEYOND = SEED_GRID[-1] + 1  # a plan past the grid ("> 60") in the plans' quartiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilots", type=int, default=100)
    parser.add_argument("--effect", type=float, default=1.0)
    parser.add_argument("--family", type=int, default=3)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.6, 0.7, 0.8])
    parser.add_argument("--rules", nargs="+", default=["named", "observed"])
    args = parser.parse_args()
    start = time.perf_counter()
    powers: dict[int, float] = {}

    def power_of(count: int) -> float:
        if count not in powers:
            powers[count] = true_power(count, args.effect, args.family, 10_000)
        return powers[count]

    rules = []
    if "named" in args.rules:
        rules += [("named: pilot SD", None, False)]
        rules += [(f"named: SD at its {PLANNING_LEVEL:.0%} bound", PLANNING_LEVEL, False)]
    if "observed" in args.rules:
        rules += [("observed: d_z at its 50% bound (the pilot's own)", FORMER, True)]
        rules += [(f"observed: d_z at its {lv:.0%} bound", lv, True) for lv in args.levels]
    for pilot in (5, 10, 20):
        for rule, level, observed in rules:
            plans = simulate_pilots(
                pilot, args.effect, args.pilots, args.family, level, seed=pilot, observed=observed
            )
            sized = plans[plans != NOT_SIZED]
            # no count on the grid: not a study that falls short
            power = np.array([power_of(c) if c else 1.0 for c in sized])
            every = np.concatenate([power, np.zeros(len(plans) - len(sized))])
            seeds = np.where(sized == 0, BEYOND, sized)
            rows = {
                "pilot_seeds": pilot,
                "rule": rule,
                "plan_median": float(np.median(seeds)),
                "plan_quartiles": [float(q) for q in np.percentile(seeds, [25, 75])],
                "share_beyond_grid": round(float((sized == 0).mean()), 3),
                "true_power_median": round(float(np.median(power)), 3),
                "true_power_quartiles": [
                    round(float(q), 3) for q in np.percentile(power, [25, 75])
                ],
                "share_below_80": round(float((power < 0.8).mean()), 3),
                "share_not_sized": round(float((plans == NOT_SIZED).mean()), 3),
                "true_power_median_all": round(float(np.median(every)), 3),
                "seconds": round(time.perf_counter() - start),
            }
            print(json.dumps(rows), flush=True)
    for c in range(11, 17):
        power_of(c)
    needed = min(
        c for c, p in powers.items() if p >= 0.8 and all(powers[k] >= 0.8 for k in powers if k > c)
    )
    print(
        json.dumps(
            {
                "pilots": args.pilots,
                "effect_dz": args.effect,
                "family": args.family,
                "true_power_by_seeds": {
                    str(int(c)): round(p, 4) for c, p in sorted(powers.items())
                },
                "true_seeds_for_80": int(needed),
                "seconds": time.perf_counter() - start,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
