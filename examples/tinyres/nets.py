"""A tiny ResNet-style CNN as a rethinkbench model plugin.

A factory takes (in_shape, num_classes, width) and returns an nn.Module whose output is
(batch, num_classes) logits; `dropout` is optional (the dropout claims need it). The two attributes
below are read by rethinkbench: `version` enters the cache key of every run (bump it whenever the
network changes, or delete it to use a hash of this package's source), `default_lr` is the SGD
learning rate when `--lr` is not given.
"""
from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (a strided 1x1 conv where the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


class TinyResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, channels: int, dropout: float = 0.0):
        super().__init__()
        c = channels
        # A strided stem: on two CPU cores a 28x28 first block cost 5x the step time.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            Block(c, c), Block(c, 2 * c, stride=2))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(2 * c, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x).mean(dim=(2, 3))))


def resnet_small(in_shape, num_classes, width, dropout=0.0):
    """(C, H, W) inputs -> num_classes logits; 8 x width base channels (width 1: ~20k weights)."""
    return TinyResNet(in_shape[0], num_classes, max(1, round(8 * width)), dropout)


resnet_small.version = "1"
resnet_small.default_lr = 0.1
