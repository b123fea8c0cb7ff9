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


def _numeric_grad(objective, t: Tensor, eps: float) -> numpy.ndarray:
    """Central differences of ``objective()`` with respect to every element of ``t`` (perturbed in place)."""
    numeric = numpy.zeros(t.shape)
    original = t.data
    xp = backend.get_array_module(original)
    # A private contiguous copy, so that the flat view below really aliases the data the function reads
    # (reshape(-1) of a transposed or broadcast array would be a copy, and perturbing it would change nothing).
    t.data = xp.array(original, copy=True, order="C")
    flat = t.data.reshape(-1)
    try:
        for j in range(flat.size):
            value = flat[j].item()
            flat[j] = value + eps
            plus = objective()
            flat[j] = value - eps
            minus = objective()
            flat[j] = value
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
    finally:
        t.data = original
    return numeric


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-6, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Compare ``backward`` of ``fn(*inputs)`` with central finite differences.

    Args:
        fn: function of the inputs returning a Tensor (any shape). It must be deterministic.
        inputs: list of Tensors (other values are passed through); those with ``requires_grad=True`` are checked
            and must be float64. Their ``.grad`` is overwritten.
        eps: finite-difference step.
        atol, rtol: pass when ``|analytic - numeric| <= atol + rtol * |numeric|`` for every element
            (a NaN on either side is a failure).
        seed: seed of the random weights ``w`` that turn a non-scalar output into the scalar ``sum(out * w)``.
        raise_exception: raise on failure (default) or return False.
    Returns:
        True on success; on failure raises ``GradcheckError`` naming the input, its worst element and both values.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 for finite differences")

    def fail(msg: str) -> bool:
        if raise_exception:
            raise GradcheckError(msg)
        return False

    out = fn(*inputs)
    weights = backend.to_device(numpy.random.default_rng(seed).standard_normal(out.shape), out.dtype)

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    for i in checked:
        inputs[i].grad = None
    if out.requires_grad:  # an output that ignores every input has zero gradient, and no graph to walk
        (out * Tensor(weights)).sum().backward()

    for i in checked:
        t = inputs[i]
        analytic = backend.to_host(t.grad).astype(numpy.float64) if t.grad is not None else numpy.zeros(t.shape)
        if analytic.shape != t.shape:
            return fail(f"gradcheck: input {i} has shape {t.shape} but its gradient has shape {analytic.shape}")
        numeric = _numeric_grad(objective, t, eps)
        err = numpy.abs(analytic - numeric)
        excess = err - (atol + rtol * numpy.abs(numeric))  # > 0 where the element fails; NaN where either is NaN
        ok = excess <= 0  # written so that NaN compares as "not ok"
        if not ok.all():
            worst_flat = int(numpy.argmax(numpy.where(ok, -numpy.inf, numpy.nan_to_num(excess, nan=numpy.inf))))
            worst = tuple(int(w) for w in numpy.unravel_index(worst_flat, t.shape))
            return fail(f"gradcheck: input {i} (shape {t.shape}) gradient mismatch at element {worst} "
                        f"({int((~ok).sum())} of {ok.size} elements wrong): analytic {analytic[worst]:.10g} vs "
                        f"numeric {numeric[worst]:.10g} (|diff| {err[worst]:.3g} > atol {atol:g} + "
                        f"rtol {rtol:g} * |numeric|)")
    return True
