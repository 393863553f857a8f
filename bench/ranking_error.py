"""A ranking's error rate and power, by simulation with its real decision code.

    .venv/bin/python bench/ranking_error.py [--studies 10000] [--seeds 10] [--effect 1.5]

For 3, 4 and 5 arms on `seeds` seeds (stats.ranking.simulate: the exact sign-flip test of every
pair, Holm over all pairs): under the global null, the share of studies with any false "ranked
apart"; with one arm better by `effect` (a d_z of each pair's differences), the share of
studies with any false verdict and the power to rank that arm above every other. The README
quotes its output.
"""

from __future__ import annotations

import argparse
import json
import math
import time

from mnistlab.stats.ranking import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--effect", type=float, default=1.5)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for arms in (3, 4, 5):
        null_rate, _ = simulate(arms, args.seeds, args.studies, 0.0, seed=arms)
        false_rate, power = simulate(arms, args.seeds, args.studies, args.effect, seed=10 + arms)
        rows.append(
            {
                "arms": arms,
                "false_verdict_rate_null": null_rate,
                "false_verdict_rate_one_better": false_rate,
                "power_best_above_all": power,
                "power_monte_carlo_se": math.sqrt(power * (1 - power) / args.studies),
            }
        )
    result = {
        "studies": args.studies,
        "seeds": args.seeds,
        "effect_dz": args.effect,
        "monte_carlo_se_at_alpha": math.sqrt(0.05 * 0.95 / args.studies),
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
