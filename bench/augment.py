"""A translate-augmented cnn2 epoch against an unaugmented one, side by side on this machine.

    .venv/bin/python bench/augment.py --train-size 10000 --rounds 3

Alternates the two configs round by round (so drift in machine load hits both alike) and
prints each round's train-only seconds and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics

from mnistlab.spec.run import RunConfig
from mnistlab.training.datasets import load_dataset
from mnistlab.training.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--augment", default="translate=2", help="e.g. translate=2,rotate=10")
    args = parser.parse_args()
    augment = {k: float(v) for k, v in (kv.split("=") for kv in args.augment.split(","))}
    data = load_dataset()
    common = dict(
        model="cnn2", train_size=args.train_size, device="cpu", threads=args.threads, eval_every=50
    )
    ratios = []
    for round_ in range(args.rounds):
        seconds = {}
        for name, extra in (("plain", {}), ("augmented", {"augment": augment})):
            result = train(RunConfig(seed=round_, **common, **extra), data)
            seconds[name] = result.epoch_train_seconds[0]
        ratios.append(seconds["augmented"] / seconds["plain"])
        print(
            f"round {round_}: plain {seconds['plain']:.2f} s, augmented "
            f"{seconds['augmented']:.2f} s, ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"augment {augment}: median ratio {statistics.median(ratios):.3f} over {args.rounds}")


if __name__ == "__main__":
    main()
