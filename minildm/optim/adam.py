"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

Adam keeps two running averages per parameter — of the gradient (first moment m) and of its square (second moment
v) — and steps each weight by m / sqrt(v): large where gradients agree, small where they are noisy. With gradient
g_t at step t = 1, 2, ..., learning rate η, betas (β1, β2) and eps ε:

    m_t = β1 m_{t-1} + (1 - β1) g_t
    v_t = β2 v_{t-1} + (1 - β2) g_t²
    m̂_t = m_t / (1 - β1^t),   v̂_t = v_t / (1 - β2^t)         (bias correction: m_0 = v_0 = 0 pulls early
    θ_t = θ_{t-1} - η m̂_t / (sqrt(v̂_t) + ε)                    averages towards zero; this undoes it)

Weight decay λ comes in two flavours:
- ``Adam``: L2 regularisation, g_t ← g_t + λ θ_{t-1}. The penalty then passes through the adaptive scaling (is
  divided by sqrt(v̂)), so weights with large gradients are decayed less than the rest.
- ``AdamW``: decoupled decay, θ ← (1 - η λ) θ before the Adam step — every weight shrinks at the same rate,
  independent of its gradient history (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").

Floating-point order. The code performs the same float32 operations in the same order as PyTorch's single-tensor
implementation (``torch.optim.adam._single_tensor_adam``), so trajectories agree with PyTorch's to float32 rounding
(about 1e-7 relative; not bit for bit, because PyTorch's CPU kernels fuse some multiply-adds). The moments are updated
as ``m += (1-β1)(g - m)`` (a lerp, algebraically equal to the line above); the bias corrections are Python floats
(float64); the step is ``θ -= (η / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + ε)`` — the formula above, with ε
added to sqrt(v̂) as in the paper (tests/optim checks this with a large ε, where the placement shows).
"""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, scalar


class Adam(Optimizer):
    """Adam with optional L2 weight decay (added to the gradient, as ``torch.optim.Adam``).

    Args:
        params: iterable of Tensors (or of param-group dicts, see ``Optimizer``).
        lr: learning rate η.
        betas: (β1, β2), decay rates of the first- and second-moment averages, each in [0, 1).
        eps: ε added to sqrt(v̂) for numerical stability.
        weight_decay: λ (L2 penalty for Adam; decoupled decay for AdamW).
    State per parameter: ``step`` (int, the t above), ``exp_avg`` (m), ``exp_avg_sq`` (v), in the parameter's dtype.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _check_hyperparameters(self, group: dict) -> None:
        name = type(self).__name__
        if group["lr"] < 0:
            raise ValueError(f"{name}: lr must be >= 0, got {group['lr']}")
        if len(group["betas"]) != 2 or not all(0.0 <= b < 1.0 for b in group["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"{name}: eps must be >= 0, got {group['eps']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"{name}: weight_decay must be >= 0, got {group['weight_decay']}")

    def _update(self, param, grad, state, group):
        theta, dtype = param.data, param.data.dtype
        xp = backend.get_array_module(theta)
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(theta)      # m_0 = 0
            state["exp_avg_sq"] = xp.zeros_like(theta)   # v_0 = 0
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"]

        if weight_decay != 0:
            if self.decoupled_weight_decay:
                theta *= scalar(1 - lr * weight_decay, dtype)                     # AdamW: θ ← (1 - ηλ) θ
            else:
                grad = grad + theta * scalar(weight_decay, dtype)                  # Adam:  g ← g + λθ

        _lerp_(m, grad, scalar(1 - beta1, dtype))                                 # m = β1 m + (1-β1) g
        v *= scalar(beta2, dtype)                                                  # v = β2 v + (1-β2) g²
        v += grad * scalar(1 - beta2, dtype) * grad                               # (in PyTorch's order)

        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        step_size = lr / bias_correction1                                          # η / (1 - β1^t)
        denom = xp.sqrt(v) / scalar(bias_correction2 ** 0.5, dtype) + scalar(eps, dtype)  # sqrt(v̂) + ε
        theta -= m * scalar(step_size, dtype) / denom                              # θ ← θ - η m̂ / (sqrt(v̂) + ε)


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← (1 - η λ) θ, then the Adam step (as ``torch.optim.AdamW``).

    Same arguments as ``Adam``; the default ``weight_decay`` is 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _lerp_(start, end, weight) -> None:
    """In place: start ← start + weight (end - start), the linear interpolation from start towards end.

    Computed as PyTorch's ``lerp_`` does: for weight < 0.5 from the ``start`` side, otherwise from the ``end``
    side as end - (end - start)(1 - weight); both equal (1 - weight) start + weight end, but each is the more
    accurate one on its half.
    """
    if abs(weight) < 0.5:
        start += (end - start) * weight
    else:
        start[...] = end - (end - start) * (1 - weight)
