"""The Tensor itself: construction, dtypes, backward mechanics, graph freeing and memory."""
import tracemalloc
import weakref

import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm import Tensor, backend, no_grad
from minildm.autograd import is_grad_enabled


def leaf(values, dtype=np.float32):
    return Tensor(to_backend(values, dtype), requires_grad=True)


# -- construction and dtypes ----------------------------------------------------------------------------------------
def test_python_data_becomes_float32_arrays_keep_their_dtype():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32 and Tensor(3.0).shape == ()
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor(to_backend(np.ones(2), np.float64)).dtype == np.float64
    assert Tensor(np.ones(2, np.float16)).dtype == np.float16
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    t = Tensor([[1.0, 2.0]])
    assert type(t.data) is type(backend.xp().zeros(1)) and t.shape == (1, 2) and t.ndim == 2 and t.size == 2


def test_requires_grad_needs_a_floating_dtype():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, got dtype int"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad_: only floating-point"):
        Tensor([1, 2]).requires_grad_()
    assert Tensor([1.0]).requires_grad_().requires_grad


SCALAR_EXPRESSIONS = {
    "t*2.0": lambda t: t * 2.0, "2.0*t": lambda t: 2.0 * t, "2.0-t": lambda t: 2.0 - t, "t-1": lambda t: t - 1,
    "t+1.5": lambda t: t + 1.5, "t**2": lambda t: t ** 2, "t**0.5": lambda t: t ** 0.5, "t/3": lambda t: t / 3,
    "3/t": lambda t: 3 / t, "2**t": lambda t: 2 ** t, "t*np.float64": lambda t: t * np.float64(2.0),
    "np.float64*t": lambda t: np.float64(2.0) * t, "t**np.float64": lambda t: t ** np.float64(2.0),
    "where": lambda t: minildm.where(t > 1, t, 0.0), "maximum": lambda t: minildm.autograd.maximum(t, 0.5),
    "clip": lambda t: t.clip(0.5, 1.5), "neg": lambda t: -t, "mean": lambda t: t.mean(), "var": lambda t: t.var(),
    "sigmoid": lambda t: t.sigmoid(),
}


@pytest.mark.parametrize("name", SCALAR_EXPRESSIONS)
def test_python_scalars_take_the_tensor_dtype(name):
    expr = SCALAR_EXPRESSIONS[name]
    for dtype in (np.float32, np.float64):  # no silent promotion to float64, and float64 stays float64
        t = leaf([1.0, 2.0], dtype)
        out = expr(t)
        assert out.dtype == dtype
        own_grads = out._backward(backend.xp().ones_like(out.data))  # the op's own backward, before any cast
        assert all(g.dtype == dtype for g in own_grads if g is not None)
        out.sum().backward()
        assert t.grad.dtype == dtype


def test_float64_works_end_to_end():
    x = leaf([[0.5, -1.0], [2.0, 0.25]], np.float64)
    w = leaf([[1.0], [2.0]], np.float64)
    loss = ((x @ w).tanh() ** 2).mean() + x.exp().sum() * 1e-3
    loss.backward()
    assert loss.dtype == np.float64 and x.grad.dtype == np.float64 and w.grad.dtype == np.float64


def test_backend_array_on_the_left_calls_the_tensor():
    t = leaf([1.0, 2.0, 3.0])
    arr = to_backend([1.0, 1.0, 2.0], np.float32)
    for out in (arr + t, arr - t, arr * t, arr / t, arr @ t):
        assert isinstance(out, Tensor) and out.requires_grad
    (arr * t).sum().backward()
    np.testing.assert_allclose(host(t.grad), [1.0, 1.0, 2.0])


def test_comparisons_return_bool_tensors_without_grad():
    t = leaf([1.0, 2.0, 3.0])
    other = Tensor(to_backend([3.0, 2.0, 1.0], np.float32))
    for out, expected in [(t < 2, [1, 0, 0]), (t <= 2, [1, 1, 0]), (t > other, [0, 0, 1]), (t >= other, [0, 1, 1]),
                          (t == other, [0, 1, 0]), (t != 2.0, [1, 0, 1])]:
        assert isinstance(out, Tensor) and out.dtype == bool and not out.requires_grad
        np.testing.assert_array_equal(host(out), np.array(expected, bool))
    with pytest.raises(ValueError, match=r"comparison <.*\(3,\) and \(2,\)"):
        t < Tensor([1.0, 2.0])


def test_item_numpy_detach_repr_len_bool():
    t = leaf([[1.5, 2.0]])
    assert t[0, 1].item() == 2.0 and isinstance(t.sum().item(), float)
    with pytest.raises(ValueError, match=r"item: tensor of shape \(1, 2\) has 2 elements"):
        t.item()
    assert isinstance(t.numpy(), np.ndarray) and t.numpy().tolist() == [[1.5, 2.0]]
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    assert "requires_grad=True" in repr(t) and "float32" in repr(t)
    assert len(t) == 1
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))
    assert bool(Tensor([0.5])) and not bool(Tensor(0.0))
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))


def test_astype_is_differentiable_between_floats_only():
    x = leaf([1.0, 2.0])
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(host(x.grad), [2.0, 4.0])
    assert not x.astype(np.int32).requires_grad


# -- backward mechanics ----------------------------------------------------------------------------------------------
def test_backward_defaults_to_one_only_for_single_elements():
    x = leaf([1.0, 2.0])
    (x * 3).sum().reshape(1, 1).backward()
    np.testing.assert_allclose(host(x.grad), [3.0, 3.0])
    with pytest.raises(ValueError, match=r"non-scalar tensor of shape \(2,\) without a gradient"):
        (x * 3).backward()
    y = x * 3
    y.backward(to_backend([1.0, 2.0], np.float32))
    np.testing.assert_allclose(host(x.grad), [6.0, 9.0])
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2,\)"):
        (x * 3).backward(to_backend([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_backward_twice_on_fresh_graphs_accumulates():
    x = leaf([1.0, -2.0])
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(host(x.grad), [4.0, -8.0])
    x.zero_grad()
    assert x.grad is None


def test_shared_subexpressions_sum_their_gradients():
    x = leaf([2.0])
    h = x * x                          # used twice below: a diamond in the graph
    y = (h * 3 + h.exp() + x).sum()    # dy/dx = 6x + 2x e^{x^2} + 1
    y.backward()
    np.testing.assert_allclose(host(x.grad), [12 + 4 * np.exp(4.0) + 1], rtol=1e-6)


def test_second_backward_through_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    h = x * 2                          # a branch shared by two losses: the second must not silently lose x's part
    h.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 3).sum().backward()


def test_retain_graph_allows_backward_again():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(host(x.grad), [4.0, 8.0])


def test_leaf_grads_are_fresh_writable_arrays():
    """An optimizer may update .grad in place: it must not be a broadcast view, the seed, or another leaf's grad."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = to_backend([1.0, 1.0], np.float32)
    (a + b).backward(seed)
    assert a.grad is not b.grad and a.grad is not seed
    a.grad *= 10
    np.testing.assert_allclose(host(b.grad), [1.0, 1.0])
    np.testing.assert_allclose(host(seed), [1.0, 1.0])
    c = leaf([[1.0, 2.0], [3.0, 4.0]])
    c.sum().backward()                 # sum's backward is a read-only broadcast view of one number
    c.grad *= 2
    np.testing.assert_allclose(host(c.grad), np.full((2, 2), 2.0))


def test_mixed_precision_grads_take_each_leaf_dtype():
    a = leaf([1.0, 2.0], np.float32)
    b = leaf([3.0, 4.0], np.float64)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_bad_backward_shape_is_caught_at_the_op():
    x = leaf([1.0, 2.0])
    y = Tensor.from_op(x.data * 2, (x,), lambda g: (g.sum(),), "buggy_op")
    with pytest.raises(RuntimeError, match=r"buggy_op.*shape \(\).*shape \(2,\)"):
        y.sum().backward()


def test_ten_thousand_ops_deep_graph_needs_no_recursion():
    x = leaf([1.0], np.float64)
    h = x
    for _ in range(10_000):
        h = h * 1.0001 + 0.0
    h.sum().backward()
    np.testing.assert_allclose(host(x.grad), [1.0001 ** 10_000], rtol=1e-9)
    deep = x
    for _ in range(10_000):
        deep = deep * 1.0
    del deep                           # releasing a deep unused graph must not overflow the C stack either


# -- graph recording and freeing --------------------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores_the_mode():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        with no_grad():
            pass
        assert not is_grad_enabled()
        y = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y._parents == () and y.is_leaf

    @no_grad()
    def infer(t):
        return t * 2
    assert not infer(x).requires_grad and is_grad_enabled()


def test_ops_on_constants_record_nothing():
    y = Tensor([1.0, 2.0]) * Tensor([3.0, 4.0])
    assert not y.requires_grad and y._parents == () and y._backward is None


def test_backward_frees_interior_nodes_and_their_buffers():
    x = leaf(np.ones((4, 4)))

    def build():
        h = (x * 2).tanh()             # an interior node only the graph keeps alive
        return (h * h).sum(), weakref.ref(h), weakref.ref(h.data) if isinstance(h.data, np.ndarray) else None

    loss, h_ref, data_ref = build()
    assert h_ref() is not None
    loss.backward()
    assert h_ref() is None             # freed as soon as backward ran, while `loss` still lives
    if data_ref is not None:           # NumPy arrays take weak references (CuPy arrays need not)
        assert data_ref() is None
    assert loss._parents == () and not loss.is_leaf


def test_retain_graph_keeps_the_buffers():
    x = leaf(np.ones(3))
    h = x * 2
    loss = (h * h).sum()
    loss.backward(retain_graph=True)
    assert loss._parents and h._parents and h._backward is not None


def test_training_steps_do_not_grow_memory():
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((32, 32)) * 0.1)
    x = Tensor(to_backend(rng.standard_normal((16, 32)), np.float32))

    def step():
        loss = ((x @ w).tanh() ** 2).mean() + (w * w).sum() * 1e-4
        loss.backward()
        with no_grad():
            w.data -= 0.01 * w.grad
        w.grad = None

    for _ in range(3):                 # warm up caches (e.g. NumPy's small-array cache)
        step()
    tracemalloc.start()
    try:
        step()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(20):
            step()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 16_384, f"memory grew by {end - start} bytes over 20 steps"
