"""A study's results built from synthetic per-run histories, through the real analysis code
(results.evidence.analyse with its store read replaced): fast, no training, no MLflow."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.results import evidence
from mnistlab.spec.parse import parse_spec

TAGS = dict(
    status="FINISHED",
    contended=False,
    diverged=False,
    failure_reason="",
    executor="local",
    threads="2",
    device="cpu",
    gpu="",
    cpu="test cpu",
    host="h",
    git_commit="abc",
    git_dirty="false",
    torch_version="2",
    mlflow_version="3",
    python_version="3.12",
)


def history_of(
    run_id: str,
    steps_to_95: int,
    seconds_per_step: float,
    accuracy: float,
    rng,
    last_eval: float | None = None,
    loss: tuple[float, float] = (1.0, 0.1),
):
    """One run's metric rows: accuracy crossing 0.95 at steps_to_95, a noisy falling loss.

    last_eval: the evaluation accuracy at step 1000, reached in a straight line from 0.95
    (default: 0.95 + step / 1e5, so never 0.97). loss: (scale, noise) of the train loss,
    scale * exp(-step / 300) * exp(N(0, noise)): its log spread is about noise, its raw rolling
    SD grows with scale.
    """
    rows = []
    evals = np.arange(50, 1001, 50)
    for step in evals:
        if step < steps_to_95:
            acc = 0.5 + 0.45 * step / steps_to_95
        elif last_eval is None:
            acc = min(0.99, 0.95 + step / 1e5)
        else:
            acc = 0.95 + (last_eval - 0.95) * (step - steps_to_95) / max(1000 - steps_to_95, 1)
        rows += [
            (run_id, names.EVAL_ACCURACY, int(step), float(acc)),
            (run_id, names.EVAL_LOSS, int(step), 1.0 - float(acc)),
            (run_id, names.TRAIN_SECONDS, int(step), float(step * seconds_per_step)),
        ]
    scale, noise = loss
    losses = scale * np.exp(-np.arange(1, 1001) / 300) * np.exp(rng.normal(0, noise, 1000))
    rows += [(run_id, names.TRAIN_LOSS, s + 1, float(v)) for s, v in enumerate(losses)]
    rows += [
        (run_id, names.TEST_ACCURACY, 1000, accuracy),
        (run_id, names.TEST_LOSS, 1000, 1 - accuracy),
        (run_id, names.EPOCH_TRAIN_SECONDS, 1000, 1000 * seconds_per_step),
        (run_id, names.EPOCH_SECONDS, 1000, 1100 * seconds_per_step),
    ]
    return rows


def synthetic_results(
    monkeypatch,
    claims: list[dict],
    values: dict[str, list[tuple]],
    name="syn",
    arms=None,
    contended: set[str] = frozenset(),
    spec_keys: dict | None = None,
    models=("cnn2", "cnn2"),
    loss: dict[str, tuple[float, float]] | None = None,
):
    """StudyResults of a study of the arms in values ('base' vs 'var', or the names in arms;
    the first is the baseline), with any further spec keys (e.g. a [ranking] table).

    values: arm -> per seed (steps_to_95, seconds_per_step, test_accuracy[, last_eval]) (see
    history_of); models: the first arms' nets, in order, the rest cnn2 (the paper's question
    is asked of cnn2 against cnn3); loss: arm -> (scale, noise) of its train loss
    (history_of); contended: the run names (arm-sSEED) that shared the machine with another
    run.
    """
    arms = list(arms or values)
    spec = parse_spec(
        {
            "name": name,
            "seeds": len(values[arms[0]]),
            # The first arm is the baseline; each other arm differs in its learning rate.
            "arms": {
                arm: {"model": models[i] if i < len(models) else "cnn2"}
                | ({"lr": 0.001 * (1 + i)} if i else {})
                for i, arm in enumerate(arms)
            },
            "claims": claims,
            **(spec_keys or {}),
        },
        Path(f"{name}.toml"),
    )
    hashes = {arm: h for h, arm in spec.arm_by_hash().items()}
    rng = np.random.default_rng(0)
    runs, history = [], []
    for arm, per_seed in values.items():
        for seed, (steps, seconds, accuracy, *last_eval) in enumerate(per_seed):
            run_id = f"{arm}-{seed}"
            runs.append(
                dict(
                    run_id=run_id,
                    run_name=f"{arm}-s{seed}",
                    arm=arm,
                    model=spec.arm(arm).model,
                    seed=seed,
                    config_hash=hashes[arm],
                    start_time=seed,
                    **{**TAGS, "contended": f"{arm}-s{seed}" in contended},
                )
            )
            history += history_of(
                run_id,
                steps,
                seconds,
                accuracy,
                rng,
                *last_eval,
                loss=(loss or {}).get(arm, (1.0, 0.1)),
            )
    runs = pd.DataFrame(runs)
    history = pd.DataFrame(history, columns=["run_id", "key", "step", "value"])
    all_runs = pd.DataFrame(
        {
            "run_name": runs["run_name"],
            "arm": runs["arm"],
            "status": "FINISHED",
            "failure_reason": "",
            "train_seconds": 1.0,
        }
    )
    monkeypatch.setattr(
        evidence, "load_evidence", lambda store, study: (spec, runs, history, all_runs)
    )
    return evidence.analyse(SimpleNamespace(tracking_uri="sqlite:///synthetic.db"), name)
