"""The sequential design's error rate and its saving, by simulation with the real decision code.

    .venv/bin/python bench/sequential_error.py [--studies 2000]

Simulates studies of three claims (first look 10 seeds, 5 more per look, at most 30: the
README's example design). Under the null (every per-seed difference symmetric around 0) it
counts studies with any false verdict; under an effect of 1 SD on every claim it reports the
mean seeds per arm at stopping. The README quotes its output.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from mnistlab.stats.sequential import SequentialDesign, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    args = parser.parse_args()
    design = SequentialDesign(first=10, block=5, max_seeds=30)
    directions = np.array([1, -1, 1])
    start = time.perf_counter()
    null_rate, _ = simulate(design, np.zeros(3), directions, args.studies, seed=1)
    _, seeds_at_effect = simulate(
        design, np.ones(3) * directions, directions, args.studies // 2, seed=2
    )
    error = math.sqrt(design.alpha * (1 - design.alpha) / args.studies)
    result = {
        "design": {"looks": design.looks(), "alpha_spent": design.spent()},
        "studies_null": args.studies,
        "false_verdict_rate_null": null_rate,
        "monte_carlo_se": error,
        "studies_effect": args.studies // 2,
        "mean_seeds_at_stop_effect_1sd": seeds_at_effect,
        "max_seeds": design.max_seeds,
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
