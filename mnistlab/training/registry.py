"""Every net mnistlab can train, by name: the only list of model names.

Each entry is "module:Class", imported only when a net is built, so reading a spec or a
stored record (spec.parse, spec.record) needs no torch. A new net is its class, in any module, and one
line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

MODELS: dict[str, str | Callable[[], Any]] = {
    "cnn2": "mnistlab.training.models:CNN2",
    "cnn3": "mnistlab.training.models:CNN3",
}


def model_factory(name: str) -> Callable[[], Any]:
    """The class registered under name (KeyError if none). A test may register a factory
    itself in place of a "module:Class" path."""
    target = MODELS[name]
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
