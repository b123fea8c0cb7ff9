"""Gradient clipping by global norm: one bad batch cannot throw the weights far away.

All gradients are treated as one long vector g. Its L2 norm is ‖g‖ = sqrt(Σ_i ‖g_i‖²) over the parameters i, and
every gradient is scaled by the same coefficient

    c = min(1, max_norm / (‖g‖ + eps))

so the direction of the update is kept and only its length is capped near max_norm. This is PyTorch's
``torch.nn.utils.clip_grad_norm_`` (whose eps is fixed at 1e-6); as there, the coefficient is applied even when it
is 1, and a non-finite norm (a NaN or inf gradient) is returned as it is, making the scaled gradients NaN so the
caller can notice it.
"""
from __future__ import annotations

import numpy

from .. import backend


def clip_grad_norm_(params, max_norm: float, eps: float = 1e-6) -> float:
    """Scale the gradients of ``params`` so that their global L2 norm is at most about ``max_norm``.

    Args:
        params: iterable of Tensors; those with ``grad is None`` are ignored.
        max_norm: the largest global gradient norm allowed.
        eps: added to the norm before dividing, to avoid division by zero.
    Returns:
        The global norm of the gradients *before* clipping, as a Python float (handy to log).
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    xp = backend.get_array_module(params[0].grad)
    f32 = numpy.float32
    # Norms in float32 (as PyTorch does for float32 gradients); float16 gradients are promoted first.
    norms = xp.stack([xp.sqrt(xp.sum(xp.square(p.grad.astype(f32, copy=False)))) for p in params])
    total_norm = f32(float(xp.sqrt(xp.sum(xp.square(norms)))))        # ‖g‖ = sqrt(Σ ‖g_i‖²), now on the host
    coef = numpy.minimum(f32(max_norm) / (total_norm + f32(eps)), f32(1.0))  # c = min(1, max_norm / (‖g‖ + eps))
    for p in params:
        # A new array rather than an in-place product: autograd may share one gradient array between leaves.
        p.grad = p.grad * coef.astype(p.grad.dtype)
    return float(total_norm)
