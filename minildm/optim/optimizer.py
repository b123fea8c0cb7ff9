"""The Optimizer base class: parameter groups, per-parameter state, ``step``, ``zero_grad``, exact save/resume.

An optimizer turns gradients into parameter updates. Every optimizer in minildm shares the same frame:

- ``param_groups``: a list of dicts, each holding ``"params"`` (a list of Tensors) and that group's hyperparameters
  (``lr``, ``weight_decay``, ...). Passing a plain iterable of Tensors makes one group. Several groups let, say,
  norms and biases skip weight decay: ``AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])``.
- ``state``: one dict per parameter (in the order the parameters were given), e.g. Adam's moment estimates and
  its step count. It stays empty until the parameter first receives a gradient.
- ``step()``: for every parameter whose ``.grad`` is not None, call the subclass's ``_update(param, grad, state,
  group)``, which changes ``param.data`` *in place* (so any other holder of the array sees the new values).
  Parameters with ``grad is None`` (frozen, or unused this step) are skipped and their state does not advance.

``state_dict()`` holds only host NumPy arrays, Python numbers and lists (never the parameters themselves), so it
can be written with ``minildm.io.save_checkpoint``; ``load_state_dict`` restores it exactly, and training continued
from it is bit-identical to training that never stopped.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..autograd import Tensor, no_grad


class Optimizer:
    """Base class. Subclasses pass their default hyperparameters and implement ``_update``.

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], **hyperparameter overrides}``.
        defaults: hyperparameters used by every group that does not override them.
    """

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params should be an iterable of Tensors (e.g. model.parameters()), "
                            "not a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        seen: set[int] = set()
        for i, group in enumerate(groups):
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"{name}: param group {i} has unknown options {sorted(unknown)}; "
                                 f"valid: {sorted(defaults)}")
            params_i = group["params"]
            params_i = [params_i] if isinstance(params_i, Tensor) else list(params_i)
            for p in params_i:
                if not isinstance(p, Tensor):
                    raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
                if p.dtype.kind != "f":
                    raise TypeError(f"{name}: can only optimize floating-point tensors, got dtype {p.dtype}")
                if id(p) in seen:
                    raise ValueError(f"{name}: a parameter appears more than once in the parameter list")
                seen.add(id(p))
            self.param_groups.append({**defaults, **group, "params": params_i})
        for group in self.param_groups:
            self._check_hyperparameters(group)
        self.state: list[dict] = [{} for _ in self._params()]

    # -- the frame every optimizer shares -----------------------------------------------------------------------
    def _params(self) -> list[Tensor]:
        """All parameters, group after group: the index of a parameter here is its index in ``state``."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        index = 0
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grad = p.grad
                        if grad.shape != p.data.shape:
                            raise ValueError(f"{type(self).__name__}.step: parameter {index} has shape "
                                             f"{p.shape} but its grad has shape {tuple(grad.shape)}")
                        # Never modify p.grad in place: the autograd engine may share one array between leaves.
                        self._update(p, grad.astype(p.data.dtype, copy=False), self.state[index], group)
                    index += 1

    def zero_grad(self) -> None:
        """Forget all gradients (set ``.grad = None``, which also frees their memory)."""
        for p in self._params():
            p.grad = None

    def _update(self, param: Tensor, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _check_hyperparameters(self, group: dict) -> None:
        """Subclasses raise ValueError for out-of-range hyperparameters."""

    # -- learning rate ------------------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate. Setting it sets every group's ``lr`` (the usual way to apply an LR schedule)."""
        lrs = {group["lr"] for group in self.param_groups}
        if len(lrs) != 1:
            raise ValueError(f"{type(self).__name__}.lr: groups have different learning rates {sorted(lrs)}; "
                             "read param_groups[i]['lr'] instead")
        return lrs.pop()

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = float(value)

    # -- save and resume ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": [one dict per parameter], "param_groups": [hyperparameters + parameter indices]}``.

        Arrays are host NumPy copies; everything else is plain Python (ints, floats, lists), ready for JSON.
        """
        state = [{k: (backend.to_host(v).copy() if _is_array(v) else v) for k, v in s.items()} for s in self.state]
        groups, start = [], 0
        for group in self.param_groups:
            hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "params"}
            hyper["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(hyper)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict`` (for the same parameters)."""
        name = type(self).__name__
        groups, state = state_dict["param_groups"], list(state_dict["state"])
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: saved state has {len(groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if set(saved) != set(group):
                raise ValueError(f"{name}.load_state_dict: saved group {i} has options {sorted(saved)}, expected "
                                 f"{sorted(group)} (was it saved by a different optimizer?)")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(saved['params'])} parameters in the "
                                 f"saved state but {len(group['params'])} here")
        params = self._params()
        if len(state) != len(params):
            raise ValueError(f"{name}.load_state_dict: saved state covers {len(state)} parameters, expected "
                             f"{len(params)}")
        new_state = []
        for i, (p, saved) in enumerate(zip(params, state)):
            entry = {}
            for key, value in saved.items():
                if _is_array(value) and value.ndim > 0:
                    if tuple(value.shape) != p.shape:
                        raise ValueError(f"{name}.load_state_dict: state[{i}][{key!r}] has shape "
                                         f"{tuple(value.shape)}, but parameter {i} has shape {p.shape}")
                    value = backend.to_device(numpy.array(backend.to_host(value)), p.dtype)  # a fresh copy
                entry[key] = value
            new_state.append(entry)
        for saved, group in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if isinstance(self.defaults.get(key), tuple) else value
            self._check_hyperparameters(group)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {hyper}")
        return "\n".join(lines + [")"])


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def scalar(value: float, dtype):
    """``value`` as a NumPy scalar of ``dtype`` (e.g. float32).

    Optimizers multiply float32 arrays by Python floats. Casting the float to the array's dtype first makes the
    arithmetic happen in float32 on NumPy and CuPy alike — the same rounding PyTorch applies to its scalar arguments.
    The array is always written on the left (``grad * scalar(...)``, never ``scalar(...) * grad``) so that CuPy's
    operator, not NumPy's, handles the product; a product of two floats is the same either way round.
    """
    return numpy.dtype(dtype).type(value)
