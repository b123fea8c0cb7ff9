"""``Parameter`` and ``Module``: how layers own their weights and find each other's.

A ``Module`` is a Python object whose attributes may be

- ``Parameter``s: trainable Tensors (``requires_grad=True``), e.g. ``self.weight``;
- other ``Module``s: its children, e.g. ``self.conv1``;
- buffers (``register_buffer``): arrays that belong to the model but are not trained (e.g. CLIP's position ids).

Assigning one of these (``self.weight = Parameter(...)``) registers it, in definition order, so the module can
walk its whole tree: ``named_parameters()`` gives dotted names exactly like PyTorch and diffusers
(``"down_blocks.0.resnets.1.conv1.weight"``), and ``state_dict()`` / ``load_state_dict()`` move the numbers in and
out under those names. Because the names match diffusers', a diffusers state dict loads with ``strict=True`` and
no renaming table.

Registered objects are also ordinary attributes, so ``self.conv1(x)`` is a plain attribute lookup (no
``__getattr__`` magic on the hot path).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor


class Parameter(Tensor):
    """A Tensor that a Module trains: ``requires_grad=True``, registered when assigned to a Module attribute.

    Args:
        data: a backend or host array (or a Tensor, whose array is shared).
        requires_grad: False freezes it (it stays a parameter: it is saved, loaded and moved with the module).
    """

    __slots__ = ()  # Tensor has __slots__; an empty tuple keeps Parameters as light as Tensors

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def as_tensor(x) -> Tensor:
    """Modules accept Tensors or raw arrays (NumPy/CuPy/lists); raw inputs are wrapped (no gradient)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _as_array(value, dtype=None):
    """A fresh backend array holding ``value`` (host or device array, Tensor or list), cast to ``dtype`` if given.

    Always a copy: the module never shares memory with the caller's array, so in-place updates (optimizers, EMA)
    cannot change the dict a state was loaded from.
    """
    host = backend.to_host(value.data if isinstance(value, Tensor) else value)
    return backend.to_device(host.astype(dtype if dtype is not None else host.dtype))  # astype copies


def _move(array, device: str):
    """``array`` on the named backend ("numpy" or "cupy"), whatever the active backend is."""
    if device == "numpy":
        return backend.to_host(array)
    return backend.module("cupy").asarray(array)  # ImportError with an install hint when CuPy is missing


class Module:
    """Base class of every layer and model. Subclasses call ``super().__init__()`` first, then assign children
    and parameters in ``__init__``, and implement ``forward``; ``module(x)`` calls ``forward(x)``."""

    def __init__(self):
        # object.__setattr__: these registries must exist before our own __setattr__ can use them.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # -- registration -----------------------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)) and value is not None:
            value = _as_array(value)
            self._buffers[name] = value  # re-assigning a buffer keeps it a buffer
        else:
            for registry in (self._parameters, self._modules, self._buffers):
                registry.pop(name, None)
            self._non_persistent.discard(name)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array, persistent: bool = True) -> None:
        """Attach a non-trainable array (moved by ``to``; saved in ``state_dict`` unless ``persistent=False``)."""
        if name in self._parameters or name in self._modules:
            raise KeyError(f"{type(self).__name__}.register_buffer: {name!r} is already a parameter or module")
        data = array.data if isinstance(array, Tensor) else array
        self._buffers[name] = None  # mark it a buffer first, so __setattr__ stores it as one
        if not persistent:
            self._non_persistent.add(name)
        if data is None:
            object.__setattr__(self, name, None)
        else:
            self.__setattr__(name, data)

    # -- walking the tree -------------------------------------------------------------------------------------
    def children(self) -> list:
        """The direct child modules, in definition order (a module registered under two names, once)."""
        return [m for _, m in self.named_children()]

    def named_children(self) -> list:
        out, seen = [], set()
        for name, module in self._modules.items():
            if id(module) not in seen:
                seen.add(id(module))
                out.append((name, module))
        return out

    def named_modules(self, prefix: str = "") -> list:
        """(dotted name, module) for this module (name ``prefix``, "" by default) and every descendant, each once."""
        out, seen, stack = [], set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            out.append((name, module))
            # reversed, so that popping visits children in definition order (depth first, like PyTorch)
            for child_name, child in reversed(module._modules.items()):
                stack.append((f"{name}.{child_name}" if name else child_name, child))
        return out

    def modules(self) -> list:
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix: str = "") -> list:
        """(dotted name, Parameter) for every parameter of the tree, each once (a shared one under its first name)."""
        out, seen = [], set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{module_name}.{name}" if module_name else name, p))
        return out

    def parameters(self) -> list:
        """Every Parameter of the tree, each once, in definition order (what an optimizer takes)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list:
        out = []
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    out.append((f"{module_name}.{name}" if module_name else name, b))
        return out

    def buffers(self) -> list:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalars in the parameters (only those with requires_grad when ``trainable_only``)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- state dict -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """name -> host NumPy array (a copy) for every parameter and persistent buffer, PyTorch's order and names:
        each module's own parameters, then its buffers, then its children's, depth first. A module reachable under
        two names (shared weights) is saved once, under the first (PyTorch would save it under both)."""
        out = {}
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                out[dot + name] = backend.to_host(p.data).copy()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[dot + name] = backend.to_host(b).copy()
        return out

    def _state_slots(self) -> dict:
        """name -> (owning module, attribute name, current array) for everything ``state_dict`` saves."""
        slots = {}
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                slots[dot + name] = (module, name, p.data)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    slots[dot + name] = (module, name, b)
        return slots

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        """Copy ``state_dict`` (name -> array) into the parameters and buffers; returns ``(missing, unexpected)``.

        Every problem is reported at once in one ValueError: missing and unexpected keys (only when ``strict``)
        and shape mismatches (always: a mis-shaped weight is never what anyone wants). Values are cast to the
        parameter's dtype and moved to the active backend, replacing ``param.data`` of the same Parameter object,
        so an optimizer that holds the parameters keeps working. With ``strict=False`` everything that matches is
        loaded and the rest is returned.
        """
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        mismatched = [f"{k} expected {tuple(slots[k][2].shape)} got {tuple(state_dict[k].shape)}"
                      for k in slots if k in state_dict and tuple(state_dict[k].shape) != tuple(slots[k][2].shape)]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if mismatched:
            problems.append(f"shape mismatch: {', '.join(mismatched)}")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for key, (module, name, current) in slots.items():
            if key not in state_dict:
                continue
            value = _as_array(state_dict[key], current.dtype)
            if name in module._parameters:
                module._parameters[name].data = value  # same Parameter object, new numbers
            else:
                module._buffers[name] = value
                object.__setattr__(module, name, value)
        return missing, unexpected

    # -- modes, devices, gradients ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (Dropout drops) or, with ``mode=False``, evaluation mode, for the whole tree."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter, e.g. the VAE and text encoder while training a U-Net."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, target) -> "Module":
        """Move every parameter and buffer to a backend (``"numpy"`` or ``"cupy"``), or cast the floating-point
        ones to a dtype (``"float64"``, ``numpy.float16``...). Parameters stay the same objects; grads are reset."""
        if isinstance(target, str) and target.strip().lower() in ("numpy", "cupy"):
            device = target.strip().lower()
            convert = lambda a: _move(a, device)  # noqa: E731
        else:
            dtype = backend.xp().dtype(target)
            if dtype.kind != "f":
                raise ValueError(f"{type(self).__name__}.to: expected 'numpy', 'cupy' or a floating dtype, "
                                 f"got {target!r}")
            convert = lambda a: a.astype(dtype) if a.dtype.kind == "f" else a  # noqa: E731
        for module in self.modules():
            for p in module._parameters.values():
                p.data, p.grad = convert(p.data), None
            for name, b in module._buffers.items():
                if b is not None:
                    module._buffers[name] = convert(b)
                    object.__setattr__(module, name, module._buffers[name])
        return self

    # -- calling and printing ---------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The constructor arguments worth printing, e.g. ``in_features=4, out_features=8, bias=True``."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        extra = self.extra_repr()
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"
