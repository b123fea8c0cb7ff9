"""Containers: ``Sequential`` (a pipeline of modules) and ``ModuleList`` (a list of modules, registered).

A Python list of modules would hide them from ``named_parameters``; these register each entry under its index, so
the names come out as in PyTorch and diffusers: ``down_blocks.0.resnets.1.conv1.weight``, ``to_out.0.weight``.
"""
from __future__ import annotations

from .module import Module


class ModuleList(Module):
    """A list of modules whose entries are named "0", "1", ... (indexable, iterable, ``append``, ``extend``)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def _index(self, i: int) -> str:
        n = len(self._modules)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {n} modules")
        return str(i % n)

    def __getitem__(self, i):
        if isinstance(i, slice):
            picked = list(self._modules.values())[i]
            return Sequential(*picked) if isinstance(self, Sequential) else ModuleList(picked)
        return self._modules[self._index(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: expected a Module, got {type(module).__name__}")
        setattr(self, self._index(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is a container and cannot be called; iterate over it instead")


class Sequential(ModuleList):
    """``Sequential(a, b, c)(x) == c(b(a(x)))``. Entries are named "0", "1", ... like ModuleList's."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
