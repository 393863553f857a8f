"""An arm in words: its full training recipe, and what differs from the baseline's.

Computed from the two arms' RunConfigs alone (no torch, no user code), so `analyze`, the
report's Setup section and the MLflow study run all say the same thing, from the store. For
example "SGD (momentum 0.9, nesterov) instead of Adam; lr 0.05 instead of 0.001; dropout 0.25".
"""

from __future__ import annotations

from typing import Any

from mnistlab.spec.run import RunConfig, is_user_model


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "×".join(_value(v) for v in value)
    return str(value)


def _arguments(args: dict[str, Any]) -> str:
    """{momentum: 0.9, nesterov: True} -> "momentum 0.9, nesterov"."""
    return ", ".join(
        key if value is True else f"no {key}" if value is False else f"{key} {_value(value)}"
        for key, value in args.items()
    )


def _with(name: str, args: dict[str, Any]) -> str:
    return f"{name} ({_arguments(args)})" if args else name


def net(config: RunConfig, parameters: int | None = None) -> str:
    """The net in words: "cnn2", or "SmallMLP from nets/my_net.py (201,482 parameters, source
    a1b2c3d4)" for a user's net."""
    extra = [f"{parameters:,} parameters"] if parameters else []
    if is_user_model(config.model):
        target, _, name = config.model.rpartition(":")
        extra.append(f"source {config.model_sha256[:8]}")
        return f"{name} from {target} ({', '.join(extra)})"
    return f"{config.model} ({extra[0]})" if extra else config.model


def optimizer(config: RunConfig) -> str:
    return _with(config.optimizer, config.optimizer_args)


def schedule(config: RunConfig) -> str:
    return _with(config.lr_schedule, config.lr_schedule_args) if config.lr_schedule else "constant"


def augmentation(config: RunConfig) -> str:
    return _arguments(config.augment) if config.augment else "none"


def _none_if_zero(value: float) -> str:
    return _value(value) if value else "none"


# (label, how a config says it) in the order a reader thinks of a recipe. The model and its
# arguments come first; the dataset is the study's, the same for every arm.
ASPECTS = (
    ("optimizer", optimizer),
    ("lr", lambda c: _value(c.lr)),
    ("lr schedule", schedule),
    ("weight decay", lambda c: _none_if_zero(c.weight_decay)),
    ("label smoothing", lambda c: _none_if_zero(c.label_smoothing)),
    ("gradient norm clip", lambda c: _none_if_zero(c.grad_clip)),
    ("augmentation", augmentation),
    ("batch size", lambda c: _value(c.batch_size)),
    ("epochs", lambda c: _value(c.epochs)),
    ("train images", lambda c: f"{c.train_size:,}"),
    ("evaluation every", lambda c: f"{c.eval_every} steps"),
    ("test images per evaluation", lambda c: f"{c.eval_subset:,}"),
)


def recipe(config: RunConfig, parameters: int | None = None) -> str:
    """The arm's full recipe, every setting named: "cnn2 (dropout 0.25); optimizer Adam; ..."."""
    model = net(config, parameters)
    if config.model_args:
        model += f" with {_arguments(config.model_args)}"
    return "; ".join([model] + [f"{label} {say(config)}" for label, say in ASPECTS])


def differences(
    baseline: RunConfig,
    arm: RunConfig,
    parameters: int | None = None,
    baseline_parameters: int | None = None,
) -> str:
    """What arm changes against baseline, in words, "; "-separated, e.g. "SGD (momentum 0.9)
    instead of Adam; lr 0.05 instead of 0.001; dropout 0.25". Settings equal in both are left
    out; "the same recipe" when nothing differs but the identity (e.g. an edited net file)."""
    said = []
    same_net = arm.model == baseline.model and arm.model_sha256 == baseline.model_sha256
    if not same_net:
        said.append(f"{net(arm, parameters)} instead of {net(baseline, baseline_parameters)}")
    for key in sorted(set(arm.model_args) | set(baseline.model_args)):
        new, old = arm.model_args.get(key), baseline.model_args.get(key)
        if new == old:
            continue
        if key not in baseline.model_args:
            said.append(f"{key} {_value(new)}")
        elif key not in arm.model_args:
            said.append(f"{key} back to the net's default instead of {_value(old)}")
        else:
            said.append(f"{key} {_value(new)} instead of {_value(old)}")
    if same_net and parameters and baseline_parameters and parameters != baseline_parameters:
        said.append(f"{parameters:,} parameters instead of {baseline_parameters:,}")
    for label, say in ASPECTS:
        new, old = say(arm), say(baseline)
        if new != old:
            said.append(
                f"{new} instead of {old}"
                if label == "optimizer"
                else f"{label} {new} instead of {old}"
            )
    return "; ".join(said) or "the same recipe"


def study_differences(spec: Any, parameters: dict[str, int] | None = None) -> dict[str, str]:
    """Variant -> what it changes against the baseline, for a StudySpec (spec.study);
    parameters: arm -> the net's parameter count where known (the runs' n_parameters tag)."""
    counts = parameters or {}
    seed = spec.seeds[0]
    base = spec.arm_config(spec.arm(spec.baseline), seed)
    return {
        name: differences(
            base,
            spec.arm_config(spec.arm(name), seed),
            counts.get(name),
            counts.get(spec.baseline),
        )
        for name in spec.variants
    }


def study_recipes(spec: Any, parameters: dict[str, int] | None = None) -> dict[str, str]:
    """Arm -> its full recipe (recipe), every arm of a StudySpec."""
    counts = parameters or {}
    return {
        arm.name: recipe(spec.arm_config(arm, spec.seeds[0]), counts.get(arm.name))
        for arm in spec.arms
    }


def differences_text(spec: Any, limit: int = 5000) -> str:
    """study_differences as lines "arm: words", cut to limit characters (an MLflow tag)."""
    text = "\n".join(f"{arm}: {words}" for arm, words in study_differences(spec).items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
