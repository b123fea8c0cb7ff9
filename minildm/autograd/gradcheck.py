"""Finite-difference gradient checking: the test that an op's backward is its forward's true derivative.

For a scalar function f of inputs x, each partial derivative is estimated by central differences
    df/dx_i ≈ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),     error O(eps^2),
and compared with what ``backward`` produced. Non-scalar outputs are reduced to the scalar ``sum(out * w)`` with a
fixed random ``w``, which checks the full vector-Jacobian product. Run it in float64: in float32 the rounding
error of f swamps the O(eps^2) truncation error.
"""
from __future__ import annotations

import numpy

from .. import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-6, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Compare ``backward`` of ``fn(*inputs)`` with central finite differences.

    Args:
        fn: function of Tensors returning a Tensor (any shape).
        inputs: list of Tensors; those with ``requires_grad=True`` are checked. Use float64.
        eps: finite-difference step.
        atol, rtol: pass when ``|analytic - numeric| <= atol + rtol * |numeric|`` for every element.
    Returns:
        True on success; on failure raises ``GradcheckError`` naming the input and its worst element.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != numpy.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {t.dtype}; use float64 for finite differences")
    out = fn(*inputs)
    weights = backend.to_device(numpy.random.default_rng(seed).standard_normal(out.shape), out.dtype)

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    (out * Tensor(weights)).sum().backward()

    for i, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = backend.to_host(t.grad) if t.grad is not None else numpy.zeros(t.shape)
        numeric = numpy.zeros(t.shape)
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input
        for j in range(flat.size):
            orig = flat[j].item()
            flat[j] = orig + eps
            plus = objective()
            flat[j] = orig - eps
            minus = objective()
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        err = numpy.abs(analytic - numeric)
        bound = atol + rtol * numpy.abs(numeric)
        if numpy.any(err > bound):
            worst = numpy.unravel_index(numpy.argmax(err - bound), t.shape)
            msg = (f"gradcheck: input {i} (shape {t.shape}) gradient mismatch at index {tuple(int(w) for w in worst)}: "
                   f"analytic {analytic[worst]:.10g} vs numeric {numeric[worst]:.10g} "
                   f"(|diff| {err[worst]:.3g} > atol {atol:g} + rtol {rtol:g}·|numeric|)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
