"""mnistlab's training speed against the paper's own loop and this machine's matmul peak.

Measured in one invocation, interleaved and repeated: the paper's loop (torchvision
Dataset + ToTensor through a DataLoader, evaluation on 2,000 images every 50 steps),
mnistlab's training with tracking off and on, and a large float32 matmul. Prints and
writes JSON: seconds per epoch (median), speed-up, GFLOP/s, fraction of peak, tracking
overhead; and checks that mnistlab's loss history matches a plain reference loop.

    python bench/bench.py            # full epochs, 3 repeats
    python bench/bench.py --quick    # 1/6 of an epoch, 2 repeats: under two minutes
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset

from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store.provenance import cpu_model, git_commit
from mnistlab.training.data_files import resolve_data_dir
from mnistlab.training.datasets import load_mnist, to_float_images
from mnistlab.training.loop import RunResult, predict, split_seed, train
from mnistlab.training.models import build_model

# Float reassociation (another conv algorithm or layout) grows chaotically over training:
# compare the first steps, where any real difference (batch, order, lr, init) is already large.
CHECK_STEPS = 5
CHECK_RTOL = 1e-3
# Evaluation may round differently from a dense forward pass (oneDNN's blocked layout), so a
# prediction may flip only where the top two logits are closer than this.
EVAL_TIE_MARGIN = 1e-4

# --- the paper's code, as printed in ../shared/seed/paper-zh.md ---------------------------


class PaperCNN(nn.Module):
    def __init__(self, third_conv: bool) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.conv3 = nn.Sequential(nn.Conv2d(32, 64, 5, 1, 2), nn.ReLU()) if third_conv else None
        self.out = nn.Linear((64 if third_conv else 32) * 7 * 7, 10)

    def forward(self, x):
        x = self.conv2(self.conv1(x))
        if self.conv3 is not None:
            x = self.conv3(x)
        x = x.view(x.size(0), -1)
        return self.out(x), x


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def paper_epoch(model_name: str, root: Path, train_size: int, seed: int, device: str) -> dict:
    """One epoch of the paper's loop; returns its wall time and evaluation count.

    On a GPU it is the paper's code with the obvious .to(device) added, nothing more.
    """
    torch.manual_seed(seed)
    train_data = torchvision.datasets.MNIST(
        root=str(root), train=True, transform=torchvision.transforms.ToTensor(), download=False
    )
    if train_size < len(train_data):
        train_data = Subset(train_data, range(train_size))
    train_loader = DataLoader(dataset=train_data, batch_size=50, shuffle=True)
    test_data = torchvision.datasets.MNIST(root=str(root), train=False)
    test_x = torch.unsqueeze(test_data.data, dim=1).type(torch.FloatTensor)[:2000] / 255.0
    test_y = test_data.targets[:2000]
    test_x = test_x.to(device)
    cnn = PaperCNN(third_conv=model_name == "cnn3").to(device)
    optimizer = torch.optim.Adam(cnn.parameters(), lr=1e-3)
    loss_func = nn.CrossEntropyLoss()
    evaluations = 0
    start = time.perf_counter()
    for step, (b_x, b_y) in enumerate(train_loader):
        b_x, b_y = b_x.to(device), b_y.to(device)
        output = cnn(b_x)[0]
        loss = loss_func(output, b_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            test_output, _ = cnn(test_x)
            pred_y = torch.max(test_output, 1)[1].data.cpu().numpy()
            _ = float((pred_y == test_y.data.numpy()).astype(int).sum()) / float(test_y.size(0))
            _ = "train loss: %.4f" % loss.data.cpu().numpy()  # the paper prints it  # noqa: UP031
            evaluations += 1
    sync(device)
    return {"seconds": time.perf_counter() - start, "evaluations": evaluations}


# --- mnistlab -----------------------------------------------------------------------------


class TimedSink:
    """Wraps a tracking sink and adds up the seconds spent inside it."""

    def __init__(self, sink) -> None:  # noqa: ANN001
        self.sink = sink
        self.seconds = 0.0

    def log(self, *args, **kwargs) -> None:
        start = time.perf_counter()
        self.sink.log(*args, **kwargs)
        self.seconds += time.perf_counter() - start

    def flush(self) -> None:
        start = time.perf_counter()
        self.sink.flush()
        self.seconds += time.perf_counter() - start


def mnistlab_epoch(config: RunConfig, data, store=None) -> dict:  # noqa: ANN001
    """One mnistlab run: untracked, or with `store` runner.tracked_train, all on the clock.

    `store` is a (tracking.Store, experiment id) pair from open_bench_store. The tracking
    time is the run's wall time minus what train() spent outside the sink: run creation,
    params, tags, the dataset, metric batches, weights and termination.
    """
    if store is None:
        start = time.perf_counter()
        result = train(config, data)
        return {"seconds": time.perf_counter() - start, "result": result}
    from mnistlab.study import runner

    training_seconds = 0.0

    def timed_train(config, data, sink, on_eval, runtime):  # noqa: ANN001, ANN202
        nonlocal training_seconds
        timed = TimedSink(sink)
        start = time.perf_counter()
        result = train(config, data, sink=timed, on_eval=on_eval, runtime=runtime)
        training_seconds = time.perf_counter() - start - timed.seconds
        return result

    tracking_store, experiment_id = store
    planned = PlannedRun(config.model, config)
    with mock.patch.object(runner, "train", timed_train):
        start = time.perf_counter()
        _, result = runner.tracked_train(planned, data, tracking_store, experiment_id, "bench")
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "result": result, "tracking_seconds": seconds - training_seconds}


def open_bench_store(folder: str):  # noqa: ANN201
    """A throwaway MLflow store for all tracked runs: opening one takes seconds, paid once."""
    from mnistlab.store.store import open_store

    store = open_store(f"sqlite:///{folder}/bench.db")
    return store, store.experiment_id("bench")


def paper_copy(model: nn.Module) -> PaperCNN:
    """The paper's net (its layer order, NCHW) holding a mnistlab model's weights."""
    copy = PaperCNN(third_conv=hasattr(model, "conv3"))
    copy.load_state_dict(model.state_dict())
    return copy


def reference_losses(config: RunConfig, data, steps: int) -> np.ndarray:  # noqa: ANN001
    """A plain loop with mnistlab's seeds: NCHW, no tricks. The fast loop must match it."""
    init_seed, order_seed = split_seed(config.seed)
    torch.manual_seed(init_seed)
    device = config.device if config.device != "auto" else "cpu"
    model = paper_copy(build_model(config.model)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    images = to_float_images(data.train_images[: config.train_size]).to(device)
    labels = data.train_labels[: config.train_size].to(device)
    order = torch.randperm(config.train_size, generator=torch.Generator().manual_seed(order_seed))
    losses = []
    for step in range(steps):
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        loss = F.cross_entropy(model(images[batch])[0], labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses, dtype=np.float32)


def evaluation_matches_reference(model: nn.Module, data) -> dict:  # noqa: ANN001
    """mnistlab's evaluation (oneDNN tensors on a CPU) against a plain dense forward pass.

    Rounding may flip a prediction only where the reference's top two logits nearly tie.
    """
    device = next(model.parameters()).device
    images = to_float_images(data.test_images).to(device)
    labels = data.test_labels.to(device)
    reference = paper_copy(model).to(device).eval()
    with torch.inference_mode():
        logits = reference(images)[0]
    fast = predict(model, images)
    top_two = logits.topk(2, dim=1).values
    differ = fast != logits.argmax(1)
    near_tie = top_two[:, 0] - top_two[:, 1] < EVAL_TIE_MARGIN
    return {
        "images": len(images),
        "accuracy": (fast == labels).sum().item() / len(images),
        "reference_accuracy": (logits.argmax(1) == labels).sum().item() / len(images),
        "predictions_that_differ": int(differ.sum()),
        "ok": bool((near_tie | ~differ).all()),
    }


# --- arithmetic ---------------------------------------------------------------------------


def flops_per_image(model_name: str) -> tuple[int, int]:
    """(forward, training) FLOPs of one image, from the layer shapes of its convs and linears.

    A layer's forward pass is its multiply-adds x 2. Training is each layer's forward pass,
    its weight gradient (as many FLOPs again) and its input gradient (as many again) for
    every layer but the first, whose input is the data: no gradient is computed for it.
    """
    model = build_model(model_name)
    forward = training = 0

    def count(module, inputs, output) -> None:  # noqa: ANN001
        nonlocal forward, training
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * np.prod(module.kernel_size)
            flops = 2 * output.numel() * int(kernel)
        else:
            flops = 2 * module.in_features * module.out_features * output.shape[0]
        forward += flops
        training += flops * (3 if inputs[0].requires_grad else 2)

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return forward, training


def matmul_gflops(device: str = "cpu", seconds: float = 2.0) -> float:
    """Sustained float32 matmul rate (TF32 off) over a few seconds: this machine's practical peak.

    Sustained rather than best-of: a short burst runs at boost clocks that a 20-second
    epoch never sees.
    """
    size = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.mm(a, b)
    sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
        if count % 8 == 0:
            sync(device)
    sync(device)
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def paired_ratio(seconds: dict[str, list[float]], numerator: str, denominator: str) -> float | None:
    """Median over repeats of a ratio measured side by side within each repeat."""
    if numerator not in seconds or denominator not in seconds:
        return None
    pairs = zip(seconds[numerator], seconds[denominator], strict=True)
    return statistics.median(a / b for a, b in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/6 epoch (10,000 images), 2 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=["cnn2", "cnn3"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-tracking", action="store_true", help="skip the MLflow runs")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    train_size = 10000 if args.quick else 60000
    sample_seconds = 1.0 if args.quick else 2.0  # each matmul sample; six per repeat of two nets
    root = resolve_data_dir(args.data_dir)
    data = load_mnist(root, download=False)
    threads = torch.get_num_threads()

    samples: dict[str, dict[str, list[float]]] = {m: {} for m in args.models}
    # The matmul rate sampled just before and just after each timed epoch; their mean is the
    # peak that epoch is set against: a 20-second epoch and a sample taken a minute earlier
    # can meet different states of a shared machine.
    brackets: dict[str, dict[str, list[float]]] = {m: {} for m in args.models}
    tracking: dict[str, list[float]] = {m: [] for m in args.models}
    peaks = []
    last_run: dict[str, tuple[RunConfig, RunResult]] = {}  # checked against the references
    store_folder = tempfile.TemporaryDirectory()
    store = None if args.no_tracking else open_bench_store(store_folder.name)
    for repeat in range(repeats):
        for model_name in args.models:
            config = RunConfig(
                model=model_name, seed=repeat, train_size=train_size, device=args.device
            )
            before = matmul_gflops(args.device, sample_seconds)
            runs = {"paper": paper_epoch(model_name, root, train_size, repeat, args.device)}
            between = matmul_gflops(args.device, sample_seconds)
            runs["mnistlab_untracked"] = mnistlab_epoch(config, data)
            after = matmul_gflops(args.device, sample_seconds)
            peaks += [before, between, after]
            brackets[model_name].setdefault("paper", []).append((before + between) / 2)
            brackets[model_name].setdefault("mnistlab", []).append((between + after) / 2)
            if not args.no_tracking:
                runs["mnistlab_tracked"] = mnistlab_epoch(config, data, store)
                tracked = runs["mnistlab_tracked"]
                tracking[model_name].append(tracked["tracking_seconds"] / tracked["seconds"])
            last_run[model_name] = (config, runs["mnistlab_untracked"]["result"])
            for kind, run in runs.items():
                samples[model_name].setdefault(kind, []).append(run["seconds"])
            print(
                f"repeat {repeat + 1}/{repeats} {model_name}: "
                + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in runs.items())
                + f"; matmul {before:.0f}, {between:.0f}, {after:.0f} GFLOP/s",
                flush=True,
            )
    store_folder.cleanup()
    peak = statistics.median(peaks)

    report = {
        "machine": {
            "cpu": cpu_model(),
            "threads": threads,
            "torch": torch.__version__,
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else "",
            "python": platform.python_version(),
            "git_commit": git_commit(),
        },
        "settings": {
            "train_size": train_size,
            "batch_size": 50,
            "eval_every": 50,
            "eval_subset": 2000,
            "repeats": repeats,
            "quick": args.quick,
        },
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_samples": peaks,
        "models": {},
    }
    for model_name in args.models:
        fwd, train_flops = flops_per_image(model_name)
        steps = train_size // 50
        evaluations = len(range(0, steps, 50))
        paper_flops = train_flops * train_size + fwd * 2000 * evaluations
        mnistlab_flops = paper_flops + fwd * 10000  # plus its full-test evaluation per epoch
        runs_of = samples[model_name]
        seconds = {k: statistics.median(v) for k, v in runs_of.items()}
        # The machine's speed drifts: each epoch is set against the matmul rate around it.
        fractions_per_repeat = {
            kind: [
                flops / s / 1e9 / p
                for s, p in zip(runs_of[run_kind], brackets[model_name][kind], strict=True)
            ]
            for kind, run_kind, flops in (
                ("paper", "paper", paper_flops),
                ("mnistlab", "mnistlab_untracked", mnistlab_flops),
            )
        }

        config, checked = last_run[model_name]
        reference = reference_losses(config, data, steps=CHECK_STEPS)
        fast = checked.train_loss[:CHECK_STEPS]
        max_rel = float(np.max(np.abs(fast - reference) / np.abs(reference)))
        entry = {
            "forward_mflops_per_image": fwd / 1e6,
            "training_mflops_per_image": train_flops / 1e6,
            "epoch_tflops": {"paper": paper_flops / 1e12, "mnistlab": mnistlab_flops / 1e12},
            "seconds_per_epoch": seconds,
            "seconds_per_repeat": runs_of,
            "speedup_over_paper": paired_ratio(runs_of, "paper", "mnistlab_untracked"),
            "speedup_over_paper_tracked": paired_ratio(runs_of, "paper", "mnistlab_tracked"),
            "gflops": {
                "paper": paper_flops / seconds["paper"] / 1e9,
                "mnistlab": mnistlab_flops / seconds["mnistlab_untracked"] / 1e9,
            },
            # Seconds spent inside MLflow calls over the tracked run's wall time: a direct
            # measurement, unlike the side-by-side difference, which machine noise swamps.
            "tracking_overhead_percent": 100 * statistics.median(tracking[model_name])
            if tracking[model_name]
            else None,
            "tracking_overhead_side_by_side_percent": 100
            * (paired_ratio(runs_of, "mnistlab_tracked", "mnistlab_untracked") - 1)
            if "mnistlab_tracked" in runs_of
            else None,
            "loss_matches_reference": {
                "steps": CHECK_STEPS,
                "max_relative_difference": max_rel,
                "ok": bool(max_rel < CHECK_RTOL),
            },
            "evaluation_matches_reference": evaluation_matches_reference(checked.model, data),
            "peak_gflops_per_repeat": brackets[model_name],
            "fraction_of_peak": {k: statistics.median(v) for k, v in fractions_per_repeat.items()},
            # The spread says how far one repeat's fraction can be trusted on this machine.
            "fraction_of_peak_per_repeat": fractions_per_repeat,
        }
        report["models"][model_name] = entry

    where = report["machine"]["gpu"] or f"{threads} threads, {cpu_model()}"
    print(f"\nmatmul peak {peak:.1f} GFLOP/s ({where})")
    print(
        f"{'model':6} {'paper s':>8} {'mnistlab s':>10} {'speed-up':>8} {'% peak':>7} "
        f"{'paper %':>7} {'tracking %':>10} {'matches ref':>11}"
    )
    print("(seconds: median per epoch; speed-up and % of the matmul peak: medians of per-repeat")
    print(" ratios, each epoch against the mean of the matmul rates just before and after it)")
    for model_name, entry in report["models"].items():
        s = entry["seconds_per_epoch"]
        print(
            f"{model_name:6} {s['paper']:8.2f} {s['mnistlab_untracked']:10.2f} "
            f"{entry['speedup_over_paper']:7.2f}x {100 * entry['fraction_of_peak']['mnistlab']:6.1f}% "
            f"{100 * entry['fraction_of_peak']['paper']:6.1f}% "
            f"{entry['tracking_overhead_percent'] or float('nan'):9.2f}% "
            f"{str(entry['loss_matches_reference']['ok']):>11}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")
    for model_name, entry in report["models"].items():
        spread = ", ".join(
            f"{100 * f:.1f}%" for f in entry["fraction_of_peak_per_repeat"]["mnistlab"]
        )
        print(f"{model_name}: mnistlab's fraction of the peak in each repeat: {spread}")
        check = entry["evaluation_matches_reference"]
        print(
            f"{model_name}: evaluation {check['accuracy']:.4f}, dense reference "
            f"{check['reference_accuracy']:.4f}; {check['predictions_that_differ']} of "
            f"{check['images']} predictions differ (allowed only at near ties)"
        )
    if not all(e["loss_matches_reference"]["ok"] for e in report["models"].values()):
        raise SystemExit("the fast loop's losses do not match the reference loop")
    if not all(e["evaluation_matches_reference"]["ok"] for e in report["models"].values()):
        raise SystemExit("mnistlab's evaluation does not match a dense forward pass")


if __name__ == "__main__":
    main()
