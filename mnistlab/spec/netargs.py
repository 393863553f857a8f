"""model_args for a registered net (cnn2, cnn3, or one a test registers), checked against the
class's own signature when a spec is read, so that a misspelt or unsupported argument is a
one-paragraph refusal at spec read rather than a TypeError where the net is built."""

from __future__ import annotations

import inspect
from typing import Any


def accepted_arguments(factory: Any) -> list[str] | None:
    """The keyword arguments factory takes; None when it takes any (**kwargs) or cannot say."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no signature to check against
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds]


def model_args_problem(model: str, model_args: dict[str, Any]) -> str | None:
    """Why model_args do not fit the registered net `model`, in one paragraph; None if they do
    (or the net is a user's, probed later by training.models.check_net)."""
    from mnistlab.training.registry import MODELS, model_factory

    if not model_args or model not in MODELS:
        return None
    accepted = accepted_arguments(model_factory(model))
    if accepted is None:
        return None
    unknown = [name for name in model_args if name not in accepted]
    if not unknown:
        return None
    takes = f"It accepts: {', '.join(accepted)}." if accepted else "It takes no arguments."
    return (
        f"model {model!r} takes no argument {', '.join(map(repr, unknown))}. {takes} Remove "
        'or correct it, or name your own net as "path/to/file.py:ClassName" to pass others.'
    )
