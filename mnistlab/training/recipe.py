"""The training recipe of a RunConfig: its optimizer and learning-rate schedule, built from
their torch class names and keyword arguments, and checked when a spec is read.

The schedule is stepped once per training step (after the optimizer's step), so its lengths
count steps: T_max, total_steps (and PolynomialLR's total_iters) default to the run's total
steps, and max_lr (OneCycleLR, CyclicLR) to the run's lr.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from mnistlab.spec.run import ConfigError, RunConfig

# Optimizers built with fused=True (one kernel per step) unless the spec says otherwise; the
# paper's Adam always was.
FUSED = ("Adam", "AdamW")
# Arguments that only the run knows: filled in when the spec leaves them out.
RUN_LENGTH_ARGUMENTS = ("T_max", "total_steps")
# Schedules that need a metric or other schedulers, which a per-step schedule cannot give.
UNSUPPORTED_SCHEDULES = ("ReduceLROnPlateau", "SequentialLR", "ChainedScheduler")


def _classes(module: Any, base: type) -> dict[str, type]:
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
        and not name.startswith("_")
    }


def optimizers() -> dict[str, type]:
    return _classes(torch.optim, torch.optim.Optimizer)


def schedules() -> dict[str, type]:
    found = _classes(lr_scheduler, lr_scheduler.LRScheduler)
    return {
        n: c for n, c in found.items() if n not in UNSUPPORTED_SCHEDULES and n != "_LRScheduler"
    }


def _lookup(key: str, name: str, known: dict[str, type], where: str) -> type:
    if name in known:
        return known[name]
    near = near_names(name, list(known))
    hint = f" Did you mean {' or '.join(near)}?" if near else ""
    return _fail(
        f"{key} {name!r} is not a class of {where}.{hint} Known: {', '.join(sorted(known))}."
    )


def near_names(name: str, known: list[str]) -> list[str]:
    """The names `name` was likely meant as: a match but for case ("sgd": SGD), else the
    closest by difflib, compared in lower case so that case does not hide a near miss."""
    same = [k for k in known if k.lower() == name.lower()]
    if same:
        return same
    lowered = {k.lower(): k for k in known}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    return [lowered[n] for n in near]


def _fail(message: str) -> Any:
    raise ConfigError(message)


def _accepted(cls: type, skip: Iterable[str]) -> list[str]:
    parameters = inspect.signature(cls.__init__).parameters
    return [
        n
        for n, p in parameters.items()
        if n not in ("self", *skip) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _check_keywords(key: str, cls: type, given: dict[str, Any], skip: Iterable[str]) -> None:
    accepted = _accepted(cls, skip)
    for name in given:
        if name not in accepted:
            near = difflib.get_close_matches(name, accepted, n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(near)}?" if near else ""
            _fail(
                f"{key}: {cls.__name__} takes no argument {name!r}.{hint} "
                f"It accepts: {', '.join(accepted)}."
            )
    _check_types(key, cls, given)


def _check_types(key: str, cls: type, given: dict[str, Any]) -> None:
    """A value whose type differs from the class's default (gamma = "x" where the default is
    0.1) fails only when torch first uses it, perhaps steps into a run: refused here."""
    parameters = inspect.signature(cls.__init__).parameters
    for name, value in given.items():
        default = parameters[name].default
        if isinstance(default, bool):
            wrong = not isinstance(value, bool)
            kind = "true or false"
        elif isinstance(default, (int, float)):
            wrong = isinstance(value, bool) or not isinstance(value, (int, float))
            kind = "a number"
        else:
            continue
        if wrong:
            _fail(
                f"{key}: {cls.__name__}'s {name} must be {kind} (its default is {default!r}), "
                f"got {value!r}. Write it without quotes, e.g. {{ {name} = {default!r} }}."
            )


def build_optimizer(config: RunConfig, parameters: Iterable[torch.nn.Parameter]):  # noqa: ANN201
    """The config's optimizer over the parameters; the paper's default is Adam(lr, fused)."""
    cls = getattr(torch.optim, config.optimizer)
    arguments: dict[str, Any] = {"lr": config.lr, **config.optimizer_args}
    if config.weight_decay:
        arguments["weight_decay"] = config.weight_decay
    if config.optimizer in FUSED and "fused" not in config.optimizer_args:
        arguments["fused"] = True
    return cls(parameters, **arguments)


def schedule_arguments(config: RunConfig, cls: type, total_steps: int) -> dict[str, Any]:
    """The spec's lr_schedule_args plus the run's length (and peak lr) where left out."""
    parameters = inspect.signature(cls.__init__).parameters
    filled: dict[str, Any] = {}
    for name in RUN_LENGTH_ARGUMENTS:
        if name in parameters:
            filled[name] = total_steps
    if cls.__name__ == "PolynomialLR":
        filled["total_iters"] = total_steps
    if "max_lr" in parameters:
        filled["max_lr"] = config.lr
    return {**filled, **config.lr_schedule_args}


def build_schedule(config: RunConfig, optimizer, total_steps: int):  # noqa: ANN001, ANN201
    """The config's schedule (None for a constant lr), to be stepped after every step."""
    if not config.lr_schedule:
        return None
    cls = getattr(lr_scheduler, config.lr_schedule)
    return cls(optimizer, **schedule_arguments(config, cls, total_steps))


def check_recipe(config: RunConfig) -> None:
    """Refuse an unknown class, a keyword it does not take or a value it rejects (ConfigError)."""
    _check_cached(
        config.optimizer,
        json.dumps(config.optimizer_args, sort_keys=True),
        config.weight_decay,
        config.lr_schedule,
        json.dumps(config.lr_schedule_args, sort_keys=True),
        config.lr,
        config.steps_per_epoch() * config.epochs,
    )


@functools.lru_cache(maxsize=256)
def _check_cached(
    optimizer: str,
    optimizer_args: str,
    weight_decay: float,
    schedule: str,
    schedule_args: str,
    lr: float,
    total_steps: int,
) -> None:
    cls = _lookup("optimizer", optimizer, optimizers(), "torch.optim")
    given = json.loads(optimizer_args)
    _check_keywords("optimizer_args", cls, given, ("params",))
    for name in ("lr", "weight_decay"):
        if name in given:
            _fail(f"optimizer_args: set {name} as its own setting ({name} = ...), not here.")
    if weight_decay and "weight_decay" not in _accepted(cls, ()):
        _fail(f"weight_decay: {optimizer} takes no weight decay; leave weight_decay out.")
    config = _shape(optimizer, given, weight_decay, schedule, json.loads(schedule_args), lr)
    probe = torch.nn.Parameter(torch.zeros(1))
    try:
        built = build_optimizer(config, [probe])
    except (TypeError, ValueError, RuntimeError) as error:
        _fail(f"optimizer {optimizer} with {given}: {error}")
    if not schedule:
        step_once(config, [probe], lambda: (probe**2).sum(), total_steps, "")
        return
    if schedule in UNSUPPORTED_SCHEDULES:
        _fail(
            f"lr_schedule {schedule} is not supported: the schedule is stepped once per training "
            "step, and it needs a metric or other schedules to step. Pick a per-step schedule "
            f"such as CosineAnnealingLR, OneCycleLR or StepLR (from {', '.join(sorted(schedules()))})."
        )
    schedule_cls = _lookup("lr_schedule", schedule, schedules(), "torch.optim.lr_scheduler")
    _check_keywords("lr_schedule_args", schedule_cls, config.lr_schedule_args, ("optimizer",))
    arguments = schedule_arguments(config, schedule_cls, total_steps)
    parameters = inspect.signature(schedule_cls.__init__).parameters
    missing = [
        n
        for n, p in parameters.items()
        if n not in ("self", "optimizer")
        and p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and n not in arguments
    ]
    if missing:
        _fail(
            f"lr_schedule {schedule} needs {', '.join(missing)}: give it in lr_schedule_args, "
            f"e.g. lr_schedule_args = {{ {missing[0]} = ... }}."
        )
    _check_lengths(schedule, config.lr_schedule_args)
    try:
        build_schedule(config, built, total_steps)
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        _fail(f"lr_schedule {schedule} with {arguments}: {error}")
    step_once(config, [probe], lambda: (probe**2).sum(), total_steps, "")


# Schedule arguments that count training steps: a count of 0 or less never steps as meant
# (StepLR with step_size = -3 decays at every step instead of never).
STEP_COUNTS = ("step_size", "T_max", "T_0", "total_iters", "total_steps", "step_size_up")


def _check_lengths(schedule: str, given: dict[str, Any]) -> None:
    for name in STEP_COUNTS:
        value = given.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(
                f"lr_schedule_args: {schedule}'s {name} counts training steps and must be a "
                f"whole number of 1 or more, got {value!r}. Give e.g. {{ {name} = 100 }}."
            )


def step_once(
    config: Any,
    parameters: list[torch.nn.Parameter],
    loss: Any,
    total_steps: int,
    where: str,
) -> None:
    """Take one real optimizer step and one schedule step, as the training loop does (a
    gradient, step(), then the schedule's step()), on parameters nobody keeps; any error
    becomes a ConfigError naming the setting. where: "arm NAME: " or "" to prefix it.
    loss: a callable giving the loss to differentiate."""
    if config.optimizer == "LBFGS":
        _fail(
            f"{where}optimizer LBFGS is not supported: its step() needs a closure that "
            "re-evaluates the loss, which a per-batch training loop does not give. Choose "
            'another torch.optim class, e.g. optimizer = "Adam" or "SGD".'
        )
    if not parameters:
        _fail(
            f"{where}the net {getattr(config, 'model', '')!r} has no trainable parameters, so "
            "the optimizer has nothing to train. Give the net at least one torch.nn.Parameter "
            "(e.g. a torch.nn.Linear layer) that its forward uses."
        )
    try:
        optimizer = build_optimizer(config, parameters)
    except (TypeError, ValueError, RuntimeError) as error:
        _fail(f"{where}optimizer {config.optimizer} with {config.optimizer_args}: {error}")
    try:
        schedule = build_schedule(config, optimizer, total_steps)  # built before steps, as in
    except (TypeError, ValueError, RuntimeError, KeyError) as error:  # the loop
        _fail(f"{where}lr_schedule {config.lr_schedule} with {config.lr_schedule_args}: {error}")
    try:
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    except Exception as error:  # noqa: BLE001 - any failure of the step is the recipe's
        fix = (
            " SparseAdam needs sparse gradients (embedding layers with sparse=True), which "
            "a net's dense layers do not give; choose another torch.optim class such as Adam."
            if config.optimizer == "SparseAdam"
            else " Check optimizer_args against torch.optim's documentation for this class."
        )
        _fail(
            f"{where}optimizer {config.optimizer} with {config.optimizer_args} fails at its "
            f"first step: {type(error).__name__}: {error}.{fix}"
        )
    try:
        if schedule is not None:
            schedule.step()
    except Exception as error:  # noqa: BLE001 - any failure of the step is the recipe's
        _fail(
            f"{where}lr_schedule {config.lr_schedule} with lr_schedule_args "
            f"{config.lr_schedule_args} fails at its first step: {type(error).__name__}: "
            f"{error}. Give each argument the type torch.optim.lr_scheduler."
            f"{config.lr_schedule} documents (e.g. gamma = 0.5, a number)."
        )


def check_step_on_net(
    config: RunConfig, net: torch.nn.Module, batch: torch.Tensor, where: str
) -> None:
    """One optimizer and schedule step on a copy of the probed net, its logits for batch
    (N, C, H, W) against class 0 (nothing trained is kept)."""
    import copy

    probe = copy.deepcopy(net).train()
    parameters = [p for p in probe.parameters() if p.requires_grad]
    labels = torch.zeros(batch.shape[0], dtype=torch.long)
    total = config.steps_per_epoch() * config.epochs
    with torch.random.fork_rng(devices=[]):
        step_once(
            config,
            parameters,
            lambda: torch.nn.functional.cross_entropy(probe(batch), labels),
            total,
            where,
        )


def _shape(
    optimizer: str,
    optimizer_args: dict[str, Any],
    weight_decay: float,
    schedule: str,
    schedule_args: dict[str, Any],
    lr: float,
) -> Any:
    """A stand-in config carrying just the recipe (RunConfig itself would check it again)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        optimizer=optimizer,
        optimizer_args=optimizer_args,
        weight_decay=weight_decay,
        lr_schedule=schedule,
        lr_schedule_args=schedule_args,
        lr=lr,
    )
