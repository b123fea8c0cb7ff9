"""``Embedding``: a learned lookup table, row i of ``weight`` is the vector for token (or position) i.

The forward is indexing, ``weight[ids]``; its backward scatter-adds each output gradient into the row it came from
(a token used twice receives the sum of both gradients).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """Args:
        num_embeddings: table size (vocabulary or number of positions).  dim: vector size.
        generator: int seed or host Generator (None: seed 0); weight ~ N(0, 1) as in PyTorch.
    Shapes: integer ids of any shape (...) -> (..., dim).
    """

    def __init__(self, num_embeddings: int, dim: int, generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(dim)
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(init.normal(shape, 1.0, init.host_generator(generator)))

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else backend.to_device(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"Embedding: ids must be integers, got dtype {ids.dtype} (shape {tuple(ids.shape)})")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):
            raise ValueError(f"Embedding: ids must be in [0, {self.num_embeddings}), got values in "
                             f"[{int(ids.min())}, {int(ids.max())}]")
        return self.weight[ids]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
