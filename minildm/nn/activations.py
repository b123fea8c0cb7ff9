"""Activation modules: ``SiLU``, ``GELU``, and the projections-with-activation used in transformer feed-forwards.

    SiLU(x)  = x * sigmoid(x)                         (Elfwing et al. 2017; "swish")
    GELU(x)  = x * Phi(x)                             (Hendrycks & Gimpel 2016), Phi the standard normal CDF
    GEGLU(x) = (x W_h + b_h) * GELU(x W_g + b_g)      (Shazeer 2020, "GLU Variants Improve Transformer")

GEGLU computes both halves with one Linear named ``proj`` of width 2 * dim_out, then splits it: the first half is
the value, the second the gate, the layout of diffusers' ``GEGLU`` (so its weights load unchanged).
"""
from __future__ import annotations

from . import functional as F
from .linear import Linear
from .module import Module, as_tensor


class SiLU(Module):
    """x * sigmoid(x), elementwise."""

    def forward(self, x):
        return F.silu(as_tensor(x))


class GELU(Module):
    """x * Phi(x), elementwise; ``approximate="tanh"`` uses the tanh approximation."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(as_tensor(x), approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class GEGLU(Module):
    """Gated GELU unit: proj (dim_in -> 2 dim_out), split into (value, gate), value * gelu(gate).

    Shapes: (..., dim_in) -> (..., dim_out).
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, generator=None):
        super().__init__()
        self.proj = Linear(dim_in, 2 * dim_out, bias=bias, generator=generator)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, axis=-1)
        return value * F.gelu(gate)


class LinearGELU(Module):
    """A Linear ``proj`` followed by GELU: diffusers' ``GELU`` module (``activation_fn="gelu"`` in FeedForward).

    Shapes: (..., dim_in) -> (..., dim_out).
    """

    def __init__(self, dim_in: int, dim_out: int, approximate: str = "none", bias: bool = True, generator=None):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"LinearGELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.proj = Linear(dim_in, dim_out, bias=bias, generator=generator)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


_BY_NAME = {"silu": SiLU, "swish": SiLU, "gelu": GELU}


def get_activation(name: str, where: str) -> Module:
    """A fresh activation module from its diffusers name ("silu" = "swish", "gelu"); ``where`` names the caller
    in the error for an unknown name."""
    if name not in _BY_NAME:
        raise ValueError(f"{where}: unknown activation {name!r}; valid: {sorted(_BY_NAME)}")
    return _BY_NAME[name]()
