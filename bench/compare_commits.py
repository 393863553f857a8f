"""Two versions of mnistlab's train(), timed side by side on this machine.

Microbenchmarks of single ops mislead on a shared 2-core machine: several changes that won
2-3x in isolation lost inside the loop. This times whole train() calls of a git revision
and of the working tree, alternating in fresh processes, and reports medians of the
per-round ratios.

    python bench/compare_commits.py 0f6c2e4 --model cnn2 --train-size 30000 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import paired_ratio  # bench/bench.py: this script's folder is on sys.path
from mnistlab.training.data_files import resolve_data_dir

ROOT = Path(__file__).resolve().parents[1]

ONE_RUN = """
import json, sys, time
from mnistlab.spec.run import RunConfig
from mnistlab.training.datasets import load_mnist
from mnistlab.training.loop import train
data = load_mnist(sys.argv[1], download=False)
config = RunConfig(model=sys.argv[2], seed=0, train_size=int(sys.argv[3]), device="cpu")
start = time.perf_counter()
result = train(config, data)
print(json.dumps({"wall": time.perf_counter() - start, "epoch": result.epoch_seconds[0],
                  "train": result.epoch_train_seconds[0]}))
"""


def time_run(tree: Path, data_dir: str, model: str, train_size: int) -> dict[str, float]:
    """One train() in a fresh process that imports mnistlab from `tree`."""
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, data_dir, model, str(train_size)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare the working tree with")
    parser.add_argument("--model", default="cnn2")
    parser.add_argument("--train-size", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--data-dir", default="", help="default: $MNISTLAB_DATA or ./data")
    args = parser.parse_args()
    data_dir = str(resolve_data_dir(args.data_dir or None).resolve())  # runs start elsewhere

    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old), args.revision],
            cwd=ROOT,
            check=True,
        )
        try:
            trees = {args.revision: old, "working tree": ROOT}
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for round_ in range(args.rounds):
                for name, tree in trees.items():
                    run = time_run(tree, data_dir, args.model, args.train_size)
                    runs[name].append(run)
                    print(f"round {round_ + 1}: {name}: {run['wall']:.2f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)

    print(f"\n{args.model}, {args.train_size} images, {args.rounds} alternating rounds (medians):")
    for name, series in runs.items():
        evaluation = statistics.median(r["epoch"] - r["train"] for r in series)
        print(
            f"{name:>14}: {statistics.median(r['wall'] for r in series):6.2f} s a run, "
            f"{statistics.median(r['train'] for r in series):6.2f} s training, "
            f"{evaluation:5.2f} s evaluating"
        )
    walls = {name: [r["wall"] for r in series] for name, series in runs.items()}
    ratio = paired_ratio(walls, args.revision, "working tree")
    print(f"speed-up of the working tree: {ratio:.3f}x (median of per-round ratios)")


if __name__ == "__main__":
    main()
