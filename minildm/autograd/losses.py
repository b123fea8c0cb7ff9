"""Fused losses: mean squared error (the diffusion objective) and cross-entropy (classifiers, CLIP).

    mse_loss(x, y)            = reduce((x - y)^2)                     d/dx = 2 (x - y)       (times 1/n for "mean")
    cross_entropy(z, t)       = reduce(-log softmax(z)[i, t_i])       d/dz = softmax(z) - onehot(t)

``reduction`` is PyTorch's: "mean" (a scalar, the average), "sum" (a scalar), or "none" (one loss per element
for mse, per row for cross-entropy).
"""
from __future__ import annotations

from .. import backend
from .ops import as_tensor
from .tensor import Tensor, _to_array

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {', '.join(_REDUCTIONS)}; got {reduction!r}")


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002 (torch's name)
    """Squared error between two tensors of the same shape (no silent broadcasting).

    input, target: any shape, equal. Both may require gradients.
    """
    _check_reduction("mse_loss", reduction)
    input = as_tensor(input)
    target = as_tensor(target, like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape {target.shape}; "
                         "they must match")
    diff = input.data - target.data
    squared = diff * diff
    if reduction == "none":
        out = squared
    else:
        out = squared.sum() if reduction == "sum" else squared.mean()
    # d loss / d input = 2 (input - target), divided by the element count for "mean"
    factor = input.dtype.type(2 / max(diff.size, 1) if reduction == "mean" else 2)

    def backward(g):
        gi = (g * factor) * diff  # g is a scalar unless reduction="none"
        return (gi if input.requires_grad else None), (-gi if target.requires_grad else None)
    return Tensor.from_op(out, (input, target), backward, "mse_loss")


def cross_entropy(logits, targets, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy with integer class targets, as ``torch.nn.functional.cross_entropy``.

    Args:
        logits: (N, C) unnormalised scores.
        targets: (N,) integer class indices in [0, C) (an array, list, or Tensor; never differentiated).
    Returns:
        a scalar for "mean"/"sum", or (N,) for "none".
    """
    _check_reduction("cross_entropy", reduction)
    logits = as_tensor(logits)
    targets = _to_array(targets.data if isinstance(targets, Tensor) else targets)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if targets.shape != (n,) or targets.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: targets must be (N,) = ({n},) integer class indices for logits of shape "
                         f"{logits.shape}, got shape {targets.shape} and dtype {targets.dtype}")
    # The range check reads the targets on the host: done on NumPy only, to keep a GPU step free of syncs.
    if not backend.is_device_array(targets) and n and (targets.min() < 0 or targets.max() >= c):
        raise ValueError(f"cross_entropy: targets must lie in [0, {c}), got values from {targets.min()} "
                         f"to {targets.max()}")

    xp = backend.get_array_module(logits.data)
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))  # log_softmax, stable
    rows = xp.arange(n)
    losses = -log_probs[rows, targets]  # (N,): -log p(target) per row
    if reduction == "none":
        out = losses
    else:
        out = losses.sum() if reduction == "sum" else losses.mean()

    def backward(g):
        grad = xp.exp(log_probs)  # softmax(z) ...
        grad[rows, targets] -= 1  # ... - onehot(t)
        if reduction == "none":
            return (grad * g[:, None],)
        return (grad * (g if reduction == "sum" else g / max(n, 1)),)
    return Tensor.from_op(out, (logits,), backward, "cross_entropy")
