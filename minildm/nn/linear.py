"""``Linear``: y = x W^T + b (the fully connected layer), and ``Identity``.

Weights are (out_features, in_features), as in PyTorch, so a PyTorch/diffusers state dict loads unchanged.
"""
from __future__ import annotations

from . import functional as F
from . import init
from .module import Module, Parameter, as_tensor


class Linear(Module):
    """y = x W^T + b.

    Args:
        in_features, out_features: sizes of the last axis of the input and the output.
        bias: learn an additive bias b (out_features,).
        generator: int seed or host Generator for the init (None: seed 0). W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
    Shapes: (..., in_features) -> (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = init.fan_in_bound(self.in_features)
        self.weight = Parameter(init.uniform((self.out_features, self.in_features), bound, g))
        self.bias = Parameter(init.uniform((self.out_features,), bound, g)) if bias else None

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with last dimension {self.in_features} (in_features), "
                             f"got shape {x.shape}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def forward(self, x):
        return as_tensor(x)
