"""Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 weight decay.

With gradient g_t of parameter θ at step t, learning rate η, momentum μ, dampening τ and weight decay λ:

    g_t ← g_t + λ θ_{t-1}                          (L2 penalty λ/2 ‖θ‖², folded into the gradient)
    b_t = g_t                         at the first step,
    b_t = μ b_{t-1} + (1 - τ) g_t     afterwards       (the momentum buffer: a running sum of past gradients)
    d_t = g_t + μ b_t   (Nesterov)    or   d_t = b_t   (classical momentum)   or   d_t = g_t   (μ = 0)
    θ_t = θ_{t-1} - η d_t

These are PyTorch's conventions (``torch.optim.SGD``, including the buffer starting at g_1 rather than (1-τ) g_1),
and the code performs the same float32 operations in the same order, so trajectories match PyTorch's to float32
rounding (about 1e-7 relative; PyTorch's CPU kernels fuse multiply-adds, so not bit for bit).
"""
from __future__ import annotations

from .optimizer import Optimizer, scalar


class SGD(Optimizer):
    """SGD with momentum.

    Args:
        params: iterable of Tensors (or of param-group dicts, see ``Optimizer``).
        lr: learning rate η.
        momentum: μ in [0, 1); 0 means plain gradient descent (no buffer is kept).
        dampening: τ, scales down the new gradient's contribution to the buffer (PyTorch's option; usually 0).
        weight_decay: λ of the L2 penalty added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _check_hyperparameters(self, group: dict) -> None:
        if group["lr"] < 0:
            raise ValueError(f"SGD: lr must be >= 0, got {group['lr']}")
        if group["momentum"] < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")

    def _update(self, param, grad, state, group):
        theta, dtype = param.data, param.data.dtype
        momentum = group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + theta * scalar(group["weight_decay"], dtype)             # g + λθ
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()                      # b_1 = g_1
            else:
                buf *= scalar(momentum, dtype)                                     # b = μ b + (1 - τ) g
                buf += grad * scalar(1 - group["dampening"], dtype)
            grad = grad + buf * scalar(momentum, dtype) if group["nesterov"] else buf
        theta -= grad * scalar(group["lr"], dtype)                                 # θ ← θ - η d
