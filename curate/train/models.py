"""The model zoo: small classifiers for MNIST-1D, digits and 28x28 images.

Every model maps an input batch ``[B, *input_shape]`` to logits ``[B, num_classes]``.
``make_model(name, input_shape, num_classes, **params)`` builds one by registered
name; a callable ``factory(input_shape, num_classes, **params) -> nn.Module`` is
accepted wherever a name is.

=========  ==============================================================  ==========
name       model                                                            params
=========  ==============================================================  ==========
logreg     multinomial logistic regression on the flattened input           -
mlp        MNIST-1D paper MLP: ReLU layers, residual after the first        hidden=100,
                                                                            depth=2
cnn1d      MNIST-1D paper CNN: 3 strided Conv1d (5/3/3) + linear            channels=25
cnn        small CNN for images: 2x (conv3x3, ReLU, maxpool) + 2 linear      widths=(32, 64),
                                                                            hidden=128
resnet     small ResNet (BasicBlocks with BatchNorm, 3 stages, global pool)  widths=(16, 32,
                                                                            64), blocks=1
=========  ==============================================================  ==========
"""

from __future__ import annotations

import math

import torch
from torch import nn

from curate.core.errors import CurateError
from curate.core.registry import MODELS, register_model


@register_model(name="logreg")
class LogReg(nn.Module):
    """Linear map from the flattened input to the logits."""

    def __init__(self, input_shape: tuple, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@register_model(name="mlp")
class MLP(nn.Module):
    """``depth`` ReLU layers of width ``hidden``; every layer after the first is residual.

    The defaults (hidden 100, depth 2) are the MNIST-1D paper's ``MLPBase``:
    ``h = relu(W1 x); h = h + relu(W2 h); logits = W3 h``.
    """

    def __init__(self, input_shape: tuple, num_classes: int, hidden: int = 100, depth: int = 2):
        super().__init__()
        if depth < 1:
            raise CurateError(f"mlp depth must be at least 1, got {depth}")
        self.first = nn.Linear(math.prod(input_shape), hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x.flatten(1)).relu()
        for layer in self.hidden:
            h = h + layer(h).relu()
        return self.out(h)


@register_model(name="cnn1d")
class CNN1d(nn.Module):
    """The MNIST-1D paper's ``ConvBase``: input ``[B, L]`` or ``[B, 1, L]``.

    Conv1d(1, c, 5, stride 2, pad 1) -> Conv1d(c, c, 3, 2, 1) -> Conv1d(c, c, 3, 2, 1),
    ReLU after each, flattened into a linear layer (L=40 gives 5 positions x 25
    channels = 125 features, 5,210 parameters with the defaults).
    """

    def __init__(self, input_shape: tuple, num_classes: int, channels: int = 25):
        super().__init__()
        if len(input_shape) == 2 and input_shape[0] == 1:
            input_shape = input_shape[1:]
        if len(input_shape) != 1:
            raise CurateError(f"cnn1d needs 1-D inputs ([L] or [1, L]), got {list(input_shape)}")
        length = input_shape[0]
        self.convs = nn.ModuleList([nn.Conv1d(1, channels, 5, stride=2, padding=1),
                                    nn.Conv1d(channels, channels, 3, stride=2, padding=1),
                                    nn.Conv1d(channels, channels, 3, stride=2, padding=1)])
        for conv in self.convs:
            length = (length + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        self.linear = nn.Linear(channels * length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), 1, -1)
        for conv in self.convs:
            h = conv(h).relu()
        return self.linear(h.flatten(1))


def _image_shape(name: str, input_shape: tuple) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise CurateError(f"{name} needs image inputs [channels, height, width], got "
                          f"{list(input_shape)}; pass shape=... when loading the data")
    return tuple(input_shape)


@register_model(name="cnn")
class SmallCNN(nn.Module):
    """Two conv3x3-ReLU-maxpool2 stages, then a hidden linear layer: for 28x28 images."""

    def __init__(self, input_shape: tuple, num_classes: int, widths=(32, 64), hidden: int = 128):
        super().__init__()
        channels, height, width = _image_shape("cnn", input_shape)
        layers = []
        for w in widths:
            layers += [nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels, height, width = w, height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, hidden),
                                  nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (projected when the shape changes) input."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(h)) + self.shortcut(x)).relu()


@register_model(name="resnet")
class ResNet(nn.Module):
    """A small CIFAR-style ResNet: stem, 3 stages of ``blocks`` BasicBlocks, global pool.

    ``widths=(16, 32, 64), blocks=1`` is ResNet-8; ``blocks=3`` is ResNet-20.
    """

    def __init__(self, input_shape: tuple, num_classes: int, widths=(16, 32, 64),
                 blocks: int = 1):
        super().__init__()
        channels = _image_shape("resnet", input_shape)[0]
        self.stem = nn.Sequential(nn.Conv2d(channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, c_in = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                stages.append(BasicBlock(c_in, w, stride=2 if i > 0 and b == 0 else 1))
                c_in = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


def make_model(name, input_shape: tuple, num_classes: int, **params) -> nn.Module:
    """Build a zoo model by name, or call ``name`` if it is a factory.

    Args:
        name: a registered model name (``curate.core.registry.MODELS``) or
            ``factory(input_shape, num_classes, **params)``.
        input_shape: one example's input shape, e.g. ``(40,)`` or ``(1, 28, 28)``.
        num_classes: number of output logits.
    """
    factory = name if callable(name) else MODELS.get(name)
    try:
        return factory(tuple(input_shape), num_classes, **params)
    except TypeError as exc:
        raise CurateError(f"bad parameters for model {name!r}: {exc}") from None
