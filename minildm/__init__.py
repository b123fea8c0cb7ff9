"""minildm: Stable Diffusion, DALL·E 2 and Imagen in miniature, from scratch on NumPy (CuPy on a GPU)."""
from . import backend
from .autograd import Tensor, cat, gradcheck, no_grad, stack, where

__version__ = "0.1.0"
__all__ = ["backend", "Tensor", "no_grad", "cat", "stack", "where", "gradcheck"]
