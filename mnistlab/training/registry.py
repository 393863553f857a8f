"""Every net mnistlab can train, by name: the only list of model names.

Each entry is "module:Class", imported only when a net is built, so reading a spec or a
stored record (spec.parse, spec.record) needs no torch. A new net is its class, in any module, and one
line here, or no line at all: a spec may name a user's net as "path.py:Class" or
"package.module:Class" (user_model_class), imported only where it trains.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from mnistlab.errors import MnistlabError

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


class UserNetError(MnistlabError, ValueError):
    """A user's net that cannot be imported or built; the message names the file and the fix."""


def check_user_source(source: str, sha256: str) -> None:
    """The user's net file a run trains is the one its config was hashed with: on another
    machine (a Ray worker) or after an edit the file may differ, and a run must not record
    numbers of one net under the identity of another. UserNetError names both hashes."""
    from mnistlab.training.owndata import file_sha256

    if not (source and sha256):
        return
    try:
        found = file_sha256(source)
    except OSError as error:
        raise UserNetError(
            f"{source}: the run's net file cannot be read here ({error.strerror}). On a cluster, "
            "put the file at the same path on every worker."
        ) from None
    if found != sha256:
        raise UserNetError(
            f"{source}: the run is set up for the file with SHA-256 {sha256[:12]}, but the file "
            f"here has {found[:12]}. It changed after the study was read (or differs on this "
            "worker): restore it, or run the study again to train runs of the new net."
        )


def _load_file(path: str) -> Any:
    """Import a .py file as a module of its own (named by the file's path), once per process."""
    module_name = "mnistlab_user_net_" + hashlib.sha256(path.encode()).hexdigest()[:12]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserNetError(f"{path}: not a Python file that can be imported.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a class's module up
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError:
        sys.modules.pop(module_name)
        raise UserNetError(f"{path}: no such file. Is it where the spec says?") from None
    except SyntaxError as error:
        sys.modules.pop(module_name)
        raise UserNetError(
            f"{path}, line {error.lineno}: a syntax error ({error.msg}). Fix the file and retry."
        ) from None
    except Exception as error:
        sys.modules.pop(module_name)
        raise UserNetError(
            f"{path}: importing the file raised {type(error).__name__}: {error}. "
            + import_fix(error, f"python {path}")
        ) from None
    return module


def import_fix(error: BaseException, rerun: str) -> str:
    """What to do about an exception raised while importing a user's net: a module that is
    not installed is named with the pip command (into the Python mnistlab runs on)."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0]
        return (
            f"Install {package} into the environment mnistlab runs in "
            f"({sys.executable} -m pip install {package}; the package's pip name may differ), "
            "or remove the import, then run again."
        )
    return f"The net's module must import without errors: run `{rerun}` to see where it fails."


def user_model_class(model: str, source: str = "") -> Callable[..., Any]:
    """The class a user's net names: "path.py:Class" from the file at source (the absolute
    path the spec resolved), or "package.module:Class" by import. Checked to be an nn.Module."""
    from torch import nn

    target, _, class_name = model.rpartition(":")
    if target.endswith(".py"):
        module = _load_file(source or target)
        where = source or target
    else:
        try:
            module = importlib.import_module(target)
        except Exception as error:
            raise UserNetError(
                f"model {model!r}: importing {target} raised {type(error).__name__}: {error}. "
                + import_fix(error, f'python -c "import {target}"')
            ) from None
        where = target
    cls = getattr(module, class_name, None)
    if cls is None:
        modules = [
            n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
        ]
        raise UserNetError(
            f"model {model!r}: {where} has no {class_name}. Its nn.Module classes: "
            f"{', '.join(modules) or 'none'}."
        )
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UserNetError(
            f"model {model!r}: {class_name} in {where} is a {type(cls).__name__}, not a subclass "
            "of torch.nn.Module. A net is a class deriving from nn.Module whose forward takes "
            "a batch of images (N, channels, height, width: (N, 1, 28, 28) for MNIST) and "
            "returns logits (N, classes)."
        )
    return cls
