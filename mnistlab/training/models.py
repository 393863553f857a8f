"""The paper's nets, and build_model, which builds one by its name in registry.MODELS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from mnistlab.errors import MnistlabError
from mnistlab.training.registry import MODELS, UserNetError, model_factory, user_model_class


def conv_block(
    in_channels: int, out_channels: int, pool: bool, batchnorm: bool = False
) -> nn.Sequential:
    """Conv 5x5 (stride 1, padding 2, size-preserving), [BatchNorm], ReLU, optional 2x2 max-pool.

    With pooling, the pool runs before the ReLU: both are monotone, so max(relu(x)) equals
    relu(max(x)) value for value and gradient for gradient, and the ReLU touches 4x fewer
    elements. The parameters (and state_dict keys) are the paper's.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 5, 1, 2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(out_channels))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.ReLU())


def _head(features: int, dropout: float) -> nn.Module:
    """The linear layer, with dropout before it when asked (the paper's has none)."""
    linear = nn.Linear(features, 10)
    return nn.Sequential(nn.Dropout(dropout), linear) if dropout else linear


def _channels(channels: Sequence[int], count: int) -> list[int]:
    widths = list(channels)
    if len(widths) != count or not all(isinstance(c, int) and c > 0 for c in widths):
        raise ValueError(f"channels must be {count} positive whole numbers, got {channels!r}")
    return widths


class CNN2(nn.Module):
    """The paper's net: two conv blocks with pooling, then one linear layer (28,938 params).

    model_args vary it: dropout (before the linear layer), batchnorm (after each conv) and
    channels (the conv widths); the defaults are the paper's.
    """

    def __init__(
        self, dropout: float = 0.0, batchnorm: bool = False, channels: Sequence[int] = (16, 32)
    ) -> None:
        super().__init__()
        c1, c2 = _channels(channels, 2)
        self.conv1 = conv_block(1, c1, pool=True, batchnorm=batchnorm)
        self.conv2 = conv_block(c1, c2, pool=True, batchnorm=batchnorm)
        self.out = _head(c2 * 7 * 7, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 1, 28, 28) in [0, 1] -> logits (N, 10)."""
        return self.out(self.conv2(self.conv1(x)).flatten(1))


class CNN3(nn.Module):
    """The paper's variant: a third conv block (no pool, 7x7 is odd) before the linear layer.

    Takes the same model_args as CNN2, with three channel widths.
    """

    def __init__(
        self,
        dropout: float = 0.0,
        batchnorm: bool = False,
        channels: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        c1, c2, c3 = _channels(channels, 3)
        self.conv1 = conv_block(1, c1, pool=True, batchnorm=batchnorm)
        self.conv2 = conv_block(c1, c2, pool=True, batchnorm=batchnorm)
        self.conv3 = conv_block(c2, c3, pool=False, batchnorm=batchnorm)
        self.out = _head(c3 * 7 * 7, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.conv3(self.conv2(self.conv1(x))).flatten(1))


class UnknownModelError(MnistlabError, ValueError):
    """A model name that is not in the registry."""


def build_model(name: str, model_args: dict[str, Any] | None = None, source: str = "") -> nn.Module:
    """Instantiate a registered net, or a user's ("path.py:Class" at source); the caller seeds
    the RNG first."""
    if ":" in name:
        factory = user_model_class(name, source)
    else:
        try:
            factory = model_factory(name)
        except KeyError:
            known = ", ".join(sorted(MODELS))
            raise UnknownModelError(
                f"Unknown model {name!r}. Known models: {known}. Pick one of those, or name "
                'your own as "path/to/file.py:ClassName".'
            ) from None
    return factory(**(model_args or {}))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_net(
    name: str,
    model_args: dict[str, Any],
    source: str = "",
    classes: int = 10,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    recipe: Any = None,
    where: str = "",
) -> int:
    """Build the net and run it on one batch of the study's input shape (2, *image_shape): it
    must return logits (2, classes). Returns its parameter count; raises UnknownModelError with one
    paragraph naming the class, what went wrong and what was expected.

    recipe: a RunConfig whose optimizer and schedule then take one step on a copy of the net
    (training.recipe.check_step_on_net; ConfigError prefixed by where, e.g. "arm wide: ")."""
    import torch

    with torch.random.fork_rng(devices=[]):  # the probe leaves the RNG as it found it
        net = _built_net(name, model_args, source)
        _check_built_in_shape(name, image_shape, classes)
        out = _one_batch(net, name, image_shape, classes)
    _check_logits(out, name, type(net).__name__, image_shape, classes)
    if recipe is not None:
        _check_recipe_step(recipe, net, (2, *image_shape), classes, where)
    return count_parameters(net)


def _built_net(name: str, model_args: dict[str, Any], source: str) -> nn.Module:
    """The net built from its settings; UnknownModelError naming what its constructor raised
    (with the arguments a built-in net accepts) or that it is not an nn.Module."""
    import inspect

    try:
        net = build_model(name, model_args, source)
    except UserNetError:
        raise
    except TypeError as error:
        cls = model_factory(name) if ":" not in name else None
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"] if cls else []
        hint = f" It accepts: {', '.join(accepted) or 'none'}." if cls else ""
        raise UnknownModelError(
            f"model {name!r} with model_args {model_args}: {error}.{hint}"
        ) from None
    except Exception as error:  # the user's __init__ may raise anything
        raise UnknownModelError(
            f"model {name!r} with model_args {model_args}: building the net raised "
            f"{type(error).__name__}: {error}. Fix its __init__ or the arguments."
        ) from None
    if not isinstance(net, nn.Module):
        raise UnknownModelError(
            f"model {name!r}: {type(net).__name__} is not a torch.nn.Module subclass."
        )
    return net


def _check_built_in_shape(name: str, image_shape: tuple[int, int, int], classes: int) -> None:
    """A built-in net takes MNIST's images and classes only; a user's net says what it takes."""
    if ":" not in name and (image_shape, classes) != ((1, 28, 28), 10):
        raise UnknownModelError(
            f"model {name!r}: the built-in nets were written for MNIST's images (1, 28, "
            f"28) (C, H, W) and 10 classes, and this dataset has images {image_shape} and "
            f'{classes} classes. Give your own net as "path/to/file.py:ClassName" whose '
            f"forward takes images (N, {', '.join(map(str, image_shape))}) and returns "
            f"logits (N, {classes})."
        )


def _one_batch(net: nn.Module, name: str, image_shape: tuple[int, int, int], classes: int) -> Any:  # noqa: ANN401 - whatever the user's forward returns
    """The net's output, in eval mode, on a batch of two blank images (2, *image_shape)."""
    import torch

    net.eval()
    shape = (2, *image_shape)
    try:
        with torch.no_grad():
            return net(torch.zeros(shape))
    except Exception as error:
        raise UnknownModelError(
            f"model {name!r}: {type(net).__name__} raised {type(error).__name__} on one batch "
            f"of images {shape}: {error}. Its forward must take images (N, "
            f"{', '.join(map(str, image_shape))}) and return logits (N, {classes})."
        ) from None


def _check_logits(
    out: Any,  # noqa: ANN401 - whatever the user's forward returned
    name: str,
    cls_name: str,
    image_shape: tuple[int, int, int],
    classes: int,
) -> None:
    """The output must be logits (2, classes): one row of class scores per image."""
    import torch

    shape = (2, *image_shape)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
        got = (
            f"a tensor of shape {tuple(out.shape)}"
            if isinstance(out, torch.Tensor)
            else f"a {type(out).__name__}"
        )
        raise UnknownModelError(
            f"model {name!r}: {cls_name} returned {got} for images {shape}; expected "
            f"logits of shape (2, {classes}), one row of {classes} class scores per image."
        )


def _check_recipe_step(
    recipe: Any, net: nn.Module, shape: tuple[int, ...], classes: int, where: str
) -> None:
    import torch

    from mnistlab.training.recipe import check_step_on_net

    with torch.random.fork_rng(devices=[]):
        check_step_on_net(recipe, net, torch.zeros(shape), where)
