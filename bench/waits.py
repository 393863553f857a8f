"""The waits a user feels: whole commands, as ratios measured side by side in one run.

Each command runs as its own process, the way a user starts it, repeated and interleaved;
every ratio is the median over repeats of the ratio within one repeat. Studies are built
without training (bench/synthetic_study.py): the paper's shape (2 arms x 10 seeds, 1,200
loss points per run) and a large one (500 runs, quick: 100).

    python bench/waits.py            # 3 repeats, a 500-run study, one full training epoch
    python bench/waits.py --quick    # 2 repeats, 100 runs, 1/6 of an epoch: a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from synthetic_study import build_study  # noqa: E402

from mnistlab.store.provenance import cpu_model, git_commit  # noqa: E402
from mnistlab.store.store import open_store  # noqa: E402

PYTHON = sys.executable
BASELINE = [PYTHON, "-c", "import mlflow, pandas, scipy.stats"]
TORCH_FLOOR = [PYTHON, "-c", "import torch, torch._dynamo"]  # what any torch training pays
# Whether a command imported a module, printed on exit by the command's own process.
PROBE = (
    "import atexit, sys; atexit.register(lambda: print('IMPORTED', *sorted("
    "m for m in ('torch', 'torchvision', 'torch._dynamo') if m in sys.modules), file=sys.stderr)); "
    "sys.argv = ['mnistlab', *sys.argv[1:]]; from mnistlab.cli.app import main; main()"
)
TARGETS = {  # ratio: at most this
    "train / its epoch_seconds": 1.25,
    "analyze / import baseline": 2.0,
    "analyze (large) / analyze": 5.0,
    "report / analyze": 2.0,
}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stderr


def mnistlab(*args: str) -> list[str]:
    return [PYTHON, "-c", PROBE, *args]


def last_epoch_seconds(uri: str) -> float:
    store = open_store(uri, create=False)
    runs = store.runs(store.experiment_id("train", create=False))
    return max(runs, key=lambda r: r.start_time).metrics["epoch_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, 100 runs, 1/6 epoch")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--large-runs", type=int, default=None)
    parser.add_argument("--out", default="bench/waits.json")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    large_runs = args.large_runs or (100 if args.quick else 500)
    train_size = 10000 if args.quick else 60000

    folder = Path(tempfile.mkdtemp(prefix="mnistlab-waits-"))
    small, large = f"sqlite:///{folder / 'paper.db'}", f"sqlite:///{folder / 'large.db'}"
    print(f"building the studies in {folder} (paper: 20 runs, large: {large_runs})", flush=True)
    start = time.perf_counter()
    build_study(open_store(small), "experiments/paper.toml", 10)
    build_study(open_store(large), "experiments/paper.toml", large_runs // 2)
    print(f"built in {time.perf_counter() - start:.0f} s", flush=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    train_uri = f"sqlite:///{folder / 'train.db'}"
    train = ["train", "--model", "cnn2", "--train-size", str(train_size), "--tracking-uri"]
    timed(mnistlab(*train, train_uri), env)  # creates the store, stamps the data: not timed

    samples: dict[str, list[float]] = {}
    imported: dict[str, str] = {}
    for repeat in range(repeats):
        commands = {
            "import baseline": BASELINE,
            "torch floor": TORCH_FLOOR,
            "analyze": mnistlab("analyze", "paper", "--tracking-uri", small),
            "analyze (large)": mnistlab("analyze", "paper", "--tracking-uri", large),
            "report": mnistlab(
                "report", "paper", "--tracking-uri", small, "--out", str(folder / "reports")
            ),
            "train": mnistlab(*train, train_uri),
        }
        for name, command in commands.items():
            seconds, stderr = timed(command, env)
            samples.setdefault(name, []).append(seconds)
            if "IMPORTED" in stderr:
                imported[name] = stderr.rsplit("IMPORTED", 1)[1].strip() or "none of them"
            if name == "train":
                samples.setdefault("epoch_seconds", []).append(last_epoch_seconds(train_uri))
        print(
            f"repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items()),
            flush=True,
        )

    def ratio(numerator: str, denominator: str) -> float:
        pairs = zip(samples[numerator], samples[denominator], strict=True)
        return statistics.median(a / b for a, b in pairs)

    floor = [
        (t + e) / e for t, e in zip(samples["torch floor"], samples["epoch_seconds"], strict=True)
    ]
    ratios = {
        "train / its epoch_seconds": ratio("train", "epoch_seconds"),
        "analyze / import baseline": ratio("analyze", "import baseline"),
        "analyze (large) / analyze": ratio("analyze (large)", "analyze"),
        "report / analyze": ratio("report", "analyze"),
    }
    report = {
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "git_commit": git_commit()},
        "settings": {"repeats": repeats, "large_runs": large_runs, "train_size": train_size},
        "seconds": samples,
        "median_seconds": {k: statistics.median(v) for k, v in samples.items()},
        "ratios": ratios,
        "targets": TARGETS,
        "train_floor_ratio": statistics.median(floor),
        "imported": imported,
    }
    print(f"\nThe waits a user feels ({repeats} repeats, medians of per-repeat ratios)")
    print(f"{'ratio':28} {'measured':>8} {'target':>7}  ok")
    for name, value in ratios.items():
        ok = "yes" if value <= TARGETS[name] else "NO"
        print(f"{name:28} {value:7.2f}x {TARGETS[name]:6.2f}x  {ok}")
    print(
        f"{'(floor: torch + its dynamo)':28} {report['train_floor_ratio']:7.2f}x"
        "           python -c 'import torch, torch._dynamo' plus the epoch, over the epoch"
    )
    for name in ("analyze", "report", "train"):
        print(f"{name} imported: {imported.get(name, '?')}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")
    if imported.get("analyze") != "none of them":
        raise SystemExit(f"mnistlab analyze imported {imported.get('analyze')}: it needs none")


if __name__ == "__main__":
    main()
