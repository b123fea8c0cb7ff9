"""``linear``, the fully connected layer, as one fused op: y = x W^T + b, forward and backward as matrix products."""
from __future__ import annotations

from .ops import as_tensor
from .tensor import Tensor


def linear(x, weight, bias=None) -> Tensor:
    """y = x W^T + b, as ``torch.nn.functional.linear``.

    x: (..., in_features); weight: (out_features, in_features); bias: (out_features,) or None -> (..., out_features)
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
                         f"(expected x: (..., {weight.shape[-1]}) and weight: (out_features, in_features))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    out_features, in_features = weight.shape
    x2 = x.data.reshape(-1, in_features)  # all leading axes in one GEMM: (M, in) @ (in, out)
    out = x2 @ weight.data.T
    if bias is not None:
        out += bias.data
    out = out.reshape(x.shape[:-1] + (out_features,))

    def backward(g):
        g2 = g.reshape(-1, out_features)
        gx = (g2 @ weight.data).reshape(x.shape) if x.requires_grad else None  # dx = dy W
        gw = g2.T @ x2 if weight.requires_grad else None                      # dW = dy^T x, summed over rows
        gb = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "linear")
