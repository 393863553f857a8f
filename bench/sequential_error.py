"""The sequential design's error rate and its saving, by simulation with the real decision code.

    .venv/bin/python bench/sequential_error.py [--studies 4000]

Simulates studies of three claims (first look 10 seeds, 5 more per look, at most 30: the
README's example design, family of 3 tests). Under the null (every per-seed difference
symmetric around 0) it counts studies with any false verdict; under an effect of 1 SD on every
claim it reports the mean seeds per arm at stopping. It does both for the design as the study
runs it (nominal levels that account for the looks' correlation) and, on the same simulated
data, for the former rule (each look at its spent increment: the union bound). The README and
bench/RESULTS.md quote its output.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from mnistlab.stats.sequential import SequentialDesign, simulate


class UnionBound(SequentialDesign):
    """The former rule: every look tests at the alpha it spends."""

    def nominal(self) -> list[float]:
        return self.spent()


def measure(design: SequentialDesign, studies: int) -> dict:
    directions = np.array([1, -1, 1])
    null_rate, _ = simulate(design, np.zeros(3), directions, studies, seed=1)
    _, seeds_at_effect = simulate(design, np.ones(3) * directions, directions, studies // 2, seed=2)
    return {
        "false_verdict_rate_null": null_rate,
        "monte_carlo_se": math.sqrt(null_rate * (1 - null_rate) / studies),
        "mean_seeds_at_stop_effect_1sd": seeds_at_effect,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4000)
    args = parser.parse_args()
    design = SequentialDesign(first=10, block=5, max_seeds=30, family=3)
    start = time.perf_counter()
    result = {
        "design": {
            "looks": design.looks(),
            "alpha_spent": design.spent(),
            "alpha_nominal": design.nominal(),
        },
        "studies_null": args.studies,
        "studies_effect": args.studies // 2,
        "nominal_levels": measure(design, args.studies),
        "union_bound": measure(UnionBound(10, 5, 30, family=3), args.studies),
        "max_seeds": design.max_seeds,
    }
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
