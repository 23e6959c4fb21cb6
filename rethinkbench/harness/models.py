"""The paper's models (Zhang et al., Appendix A), by name, with a width multiplier.

At width 1 and a 3x28x28 input the parameter counts are the paper's exactly (asserted in
tests/test_models.py): mlp1x512 1,209,866; mlp3x512 1,735,178; alexnet_small 1,387,786;
inception_small and inception_small_nobn 1,649,402 (conv biases counted, BatchNorm without affine
parameters, which is what makes the two Inception counts equal). The cpu scale uses `width < 1` to
keep conv nets affordable on two cores; every channel/unit count is scaled and rounded.

One network is not Zhang et al.'s: `resnet18`, the width-parametrized pre-activation ResNet18 of
Nakkiran et al. 2019 (Deep double descent, App. B) for the model-wise double descent claim: width w
gives stages of k, 2k, 4k, 8k channels with k = round(64 w), so widths 1/64 ... 1 are their k = 1 ... 64.
"""
from __future__ import annotations

import torch
from torch import nn

from rethinkbench.base.errors import UsageError

MODELS = ("mlp1x512", "mlp3x512", "alexnet_small", "inception_small", "inception_small_nobn", "resnet18")
# The SGD learning rate of each network's paper. resnet18: 0.1, the usual SGD lr of the CIFAR-10
# ResNet18 recipe Nakkiran et al. adapted (kuangliu/pytorch-cifar); their double descent runs use
# Adam at 1e-4 instead, which the claim asks for explicitly (RunConfig optimizer="adam", lr=1e-4).
PAPER_LR = {"mlp1x512": 0.01, "mlp3x512": 0.01, "alexnet_small": 0.01,
            "inception_small": 0.1, "inception_small_nobn": 0.1, "resnet18": 0.1}


def _w(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: list[int], num_classes: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = h
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class AlexNetSmall(nn.Module):
    """[conv 5x5 -> max-pool 3x3/2 SAME -> LRN] x 2 -> FC 384 -> FC 192 -> linear."""

    def __init__(self, in_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0):
        super().__init__()
        c, h, w = in_shape
        ch = _w(64, width)
        # LRN as in TF's cifar10 model (depth_radius 4, alpha 0.001/9): torch divides alpha by size.
        block = lambda cin: [nn.Conv2d(cin, ch, 5, padding=2), nn.ReLU(inplace=True),
                             nn.MaxPool2d(3, 2, padding=1),
                             LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)]
        self.features = nn.Sequential(*block(c), *block(ch))
        side = lambda s: (s + 2 - 3) // 2 + 1
        flat = ch * side(side(h)) * side(side(w))
        f1, f2 = _w(384, width), _w(192, width)
        drop = [nn.Dropout(dropout)] if dropout else []
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, f1), nn.ReLU(inplace=True), *drop,
                                        nn.Linear(f1, f2), nn.ReLU(inplace=True), *drop,
                                        nn.Linear(f2, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class LocalResponseNorm(nn.Module):
    """Same function as nn.LocalResponseNorm, computed with a cumulative sum over channels.

    torch's version runs avg_pool3d over the squares, which on CPU took 40% of small AlexNet's step
    time; a prefix sum gives every channel window in one pass (tests/test_models.py checks equality).
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        sq = torch.nn.functional.pad(x * x, (0, 0, 0, 0, self.size // 2 + 1, (self.size - 1) // 2))
        cs = sq.cumsum(dim=1)
        window = cs[:, self.size:] - cs[:, :-self.size]
        return x / (self.k + self.alpha / self.size * window).pow(self.beta)


class ConvModule(nn.Sequential):
    """conv -> BN (no affine parameters, as the paper's count implies) -> ReLU."""

    def __init__(self, cin, cout, k, stride=1, bn=True):
        layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)]  # SAME: 28 -> 14 -> 7
        if bn:
            layers.append(nn.BatchNorm2d(cout, affine=False))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = cout


class Inception(nn.Module):
    def __init__(self, cin, c1, c3, bn=True):
        super().__init__()
        self.b1, self.b3 = ConvModule(cin, c1, 1, bn=bn), ConvModule(cin, c3, 3, bn=bn)
        self.out_channels = c1 + c3

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x)], dim=1)


class Downsample(nn.Module):
    def __init__(self, cin, c3, bn=True):
        super().__init__()
        self.conv = ConvModule(cin, c3, 3, stride=2, bn=bn)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.out_channels = c3 + cin

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class InceptionSmall(nn.Module):
    # (kind, channels) in the paper's order (Zhang et al., Fig. 3 / Appendix A).
    PLAN = [("inc", 32, 32), ("inc", 32, 48), ("down", 80), ("inc", 112, 48), ("inc", 96, 64),
            ("inc", 80, 80), ("inc", 48, 96), ("down", 96), ("inc", 176, 160), ("inc", 176, 160)]

    def __init__(self, in_shape, num_classes: int, width: float = 1.0, bn: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        stem = ConvModule(in_shape[0], _w(96, width), 3, bn=bn)
        layers, cin = [stem], stem.out_channels
        for kind, *chs in self.PLAN:
            chs = [_w(c, width) for c in chs]
            block = Inception(cin, *chs, bn=bn) if kind == "inc" else Downsample(cin, *chs, bn=bn)
            layers.append(block)
            cin = block.out_channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x).mean(dim=(2, 3))))


class PreActBlock(nn.Module):
    """BN -> ReLU -> conv 3x3 (stride) -> BN -> ReLU -> conv 3x3, plus the shortcut: identity, or a
    1x1 conv (stride) of the pre-activated input where the shape changes (He et al. 2016, v2)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """Nakkiran et al.'s ResNet18 family: conv 3x3 (k) -> 4 stages of 2 PreActBlocks with k, 2k,
    4k, 8k channels and strides 1, 2, 2, 2 -> global mean pool -> linear. As in the code they
    adapted (kuangliu/pytorch-cifar's PreActResNet18) there is no BN-ReLU after the last stage.
    k = 64 is the standard ResNet18 (11,171,146 parameters for 3 input channels, 10 classes)."""

    def __init__(self, in_shape, num_classes: int, width: float = 1.0):
        super().__init__()
        k = _w(64, width)
        self.stem = nn.Conv2d(in_shape[0], k, 3, padding=1, bias=False)
        blocks, cin = [], k
        for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            blocks += [PreActBlock(cin, mult * k, stride), PreActBlock(mult * k, mult * k, 1)]
            cin = mult * k
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def build_model(name: str, in_shape=(3, 28, 28), num_classes: int = 10, width: float = 1.0,
                dropout: float = 0.0) -> nn.Module:
    """A paper model by name (``rb.build_model``, rethinkbench/registry, also builds plugins). `width` scales every hidden width; `dropout` adds dropout after hidden
    layers (A-reg-hinders-noise); the paper's randomization runs use neither."""
    if name not in MODELS:   # plugins resolve one layer up: rethinkbench.registry.build_model (rb.build_model)
        raise UsageError(f"unknown built-in model {name!r}; built-in: {', '.join(MODELS)} (rb.build_model "
                         f"also builds plugins: module:factory or an entry point)")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise UsageError(f"width multiplier must be a positive number, got {width!r}")
    if not 0.0 <= dropout < 1.0:
        raise UsageError(f"dropout must be in [0, 1), got {dropout!r}")
    if len(in_shape) != 3:
        raise UsageError(f"in_shape must be (C, H, W), got {in_shape!r}")
    c, h, w = in_shape
    if name.startswith("mlp"):
        depth = int(name[3])
        model = MLP(c * h * w, [_w(512, width)] * depth, num_classes, dropout)
    elif name == "alexnet_small":
        model = AlexNetSmall(in_shape, num_classes, width, dropout)
    elif name == "resnet18":
        if dropout:
            raise UsageError("resnet18 has no dropout (Nakkiran et al.'s network has none); got "
                             f"dropout={dropout!r}")
        model = PreActResNet18(in_shape, num_classes, width)
    else:
        model = InceptionSmall(in_shape, num_classes, width, bn=(name == "inception_small"), dropout=dropout)
    model.in_shape = tuple(in_shape)  # lets a saved state dict be rebuilt (cache.py)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def glorot_uniform_(model: nn.Module) -> nn.Module:
    """TensorFlow's default initializer for dense and conv layers: Glorot-uniform weights, zero
    biases (tf.keras.layers.Dense/Conv2D kernel_initializer='glorot_uniform',
    bias_initializer='zeros'). Draws from the global RNG, in module order."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def kaiming_normal_(model: nn.Module) -> nn.Module:
    """He et al. (2015): normal weights of variance 2 / fan_in (ReLU gain), zero biases; keeps the
    activation scale through a deep stack of ReLU layers without normalization."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


INITS = ("torch", "glorot_uniform", "kaiming_normal")


def initialize(model: nn.Module, init: str) -> nn.Module:
    """Apply the named initialization: 'torch' leaves PyTorch's defaults (kaiming-uniform with
    a=sqrt(5), the harness's behaviour since the start), 'glorot_uniform' is TF's default,
    'kaiming_normal' is He et al.'s."""
    if init == "torch":
        return model
    if init == "glorot_uniform":
        return glorot_uniform_(model)
    if init == "kaiming_normal":
        return kaiming_normal_(model)
    raise UsageError(f"unknown init {init!r}; known: {', '.join(INITS)}")
