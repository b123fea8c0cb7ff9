"""Shape ops and indexing: forward against NumPy, backward against finite differences."""
import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm import Tensor
from minildm.autograd import gradcheck


def leaf(values, dtype=np.float64):
    return Tensor(to_backend(values, dtype), requires_grad=True)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(4, 6), lambda v: v.reshape(4, 6)),
    "reshape_tuple_infer": (lambda x: x.reshape((-1, 3)), lambda v: v.reshape(-1, 3)),
    "flatten": (lambda x: x.flatten(1), lambda v: v.reshape(2, -1)),
    "transpose_all": (lambda x: x.transpose(), lambda v: v.transpose()),
    "T": (lambda x: x.T, lambda v: v.T),
    "transpose_axes": (lambda x: x.transpose(2, 0, 1), lambda v: v.transpose(2, 0, 1)),
    "permute_negative": (lambda x: x.permute((-1, 1, 0)), lambda v: v.transpose(2, 1, 0)),
    "swapaxes": (lambda x: x.swapaxes(0, -1), lambda v: v.swapaxes(0, -1)),
    "expand": (lambda x: x[:, :1].expand(3, 2, 4, 4), lambda v: np.broadcast_to(v[:, :1], (3, 2, 4, 4))),
    "broadcast_to": (lambda x: x.broadcast_to((2, 2, 3, 4)), lambda v: np.broadcast_to(v, (2, 2, 3, 4))),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_ops(name):
    fn, reference = SHAPE_OPS[name]
    values = rand((2, 3, 4), 1)
    x = leaf(values)
    np.testing.assert_array_equal(host(fn(x)), reference(values))
    assert gradcheck(fn, [x])


INDICES = {
    "int": 1, "negative_int": -1, "slice": slice(0, 2), "neg_step": (slice(None), slice(None, None, -2)),
    "int_and_slice": (0, slice(1, None)), "none": (None, 1), "ellipsis": (Ellipsis, 2), "ellipsis_none": (..., None),
    "mixed": (-1, None, slice(None, None, -1)), "empty_slice": slice(3, 3),
    "int_array_repeats": np.array([0, 2, 0, 0]), "list_repeats": [1, 1, 0],
    "2d_fancy_repeats": (np.array([0, 0, 2]), np.array([1, 1, 3])), "fancy_and_slice": (slice(None), [3, 0, 3]),
    "fancy_2d_array": np.array([[0, 1], [1, 1]]), "bool_mask": np.array([True, False, True]),
    "bool_mask_2d": np.random.default_rng(2).random((3, 4)) > 0.5, "tensor_index": Tensor([2, 2]),
}


def numpy_index(index):
    """The same index for a host NumPy array (Tensors and lists become NumPy arrays)."""
    def convert(item):
        return host(item) if isinstance(item, Tensor) else np.asarray(item) if isinstance(item, list) else item
    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


@pytest.mark.parametrize("name", INDICES)
def test_getitem(name):
    index = INDICES[name]
    values = rand((3, 4), 3)
    x = leaf(values)
    np.testing.assert_array_equal(host(x[index]), values[numpy_index(index)])
    assert gradcheck(lambda x: x[index], [x])


def test_repeated_indices_accumulate_their_gradients():
    x = leaf(np.arange(5.0), np.float32)
    x[to_backend(np.array([0, 3, 0, 0, 4]))].sum().backward()
    np.testing.assert_array_equal(host(x.grad), [3, 0, 0, 1, 1])
    y = leaf(np.zeros((2, 3)), np.float32)
    y[[1, 1, 0], [2, 2, 2]].sum().backward()
    np.testing.assert_array_equal(host(y.grad), [[0, 0, 1], [0, 0, 2]])


def test_boolean_mask_from_a_comparison():
    values = rand((3, 4), 4)
    x = leaf(values)
    mask = x > 0
    np.testing.assert_array_equal(host(x[mask]), values[values > 0])
    x[mask].sum().backward()
    np.testing.assert_array_equal(host(x.grad), (values > 0).astype(float))


def test_index_errors_name_the_shape():
    with pytest.raises(IndexError, match=r"getitem: .* shape \(3,\)"):
        leaf(np.ones(3))[5]


# -- joining and splitting -------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat(axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(s if i != axis % 3 else k + 1 for i, s in enumerate(sh)) for k, sh in enumerate(shapes)]
    arrays = [rand(s, 10 + k) for k, s in enumerate(shapes)]
    tensors = [leaf(a) for a in arrays]
    np.testing.assert_array_equal(host(minildm.cat(tensors, axis=axis)), np.concatenate(arrays, axis=axis))
    assert gradcheck(lambda *ts: minildm.cat(ts, axis=axis), tensors)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_stack(axis):
    arrays = [rand((2, 3), 20 + k) for k in range(3)]
    tensors = [leaf(a) for a in arrays]
    np.testing.assert_array_equal(host(minildm.stack(tensors, axis=axis)), np.stack(arrays, axis=axis))
    assert gradcheck(lambda *ts: minildm.stack(ts, axis=axis), tensors)


def test_stack_and_cat_of_scalars_and_mixed_constants():
    a, b = leaf(1.0), leaf(2.0)
    assert gradcheck(lambda a, b: minildm.stack([a, b, Tensor(to_backend(3.0, np.float64))]), [a, b])
    x = leaf(rand((2,), 30))
    assert gradcheck(lambda x: minildm.cat([x, to_backend(np.ones(3))]), [x])


@pytest.mark.parametrize("how", ["int", "sizes", "chunk", "chunk_uneven", "method_axis1"])
def test_split_and_chunk(how):
    values = rand((5, 4), 31)
    x = leaf(values)
    pieces_fn = {
        "int": lambda x: minildm.autograd.split(x, 2),
        "sizes": lambda x: minildm.autograd.split(x, [1, 0, 4]),
        "chunk": lambda x: x.chunk(5),
        "chunk_uneven": lambda x: minildm.autograd.chunk(x, 3),
        "method_axis1": lambda x: x.split(3, axis=1),
    }[how]
    np_pieces = {
        "int": np.split(values, [2, 4]), "sizes": np.split(values, [1, 1]), "chunk": np.split(values, 5),
        "chunk_uneven": np.split(values, [2, 4]), "method_axis1": np.split(values, [3], axis=1),
    }[how]
    pieces = pieces_fn(x)
    assert len(pieces) == len(np_pieces)
    for p, q in zip(pieces, np_pieces):
        np.testing.assert_array_equal(host(p), q)

    def weighted(x):  # every piece used, each with its own weight, so a mixed-up gradient would show
        return minildm.cat([p * (k + 1.0) for k, p in enumerate(pieces_fn(x))], axis=1 if how == "method_axis1" else 0)
    assert gradcheck(weighted, [x])


def test_shape_op_errors_name_op_and_shapes():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape tensor of shape \(2, 3\) \(6 elements\) into"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"cat: shapes \[\(2, 3\), \(2, 4\)\] differ outside axis 0"):
        minildm.cat([x, leaf(np.ones((2, 4)))])
    with pytest.raises(ValueError, match=r"cat: shapes \[\(2, 3\), \(3,\)\]"):
        minildm.cat([x, leaf(np.ones(3))])
    with pytest.raises(ValueError, match="cat: axis 2 is out of range"):
        minildm.cat([x, x], axis=2)
    with pytest.raises(ValueError, match="cat: needs at least one tensor"):
        minildm.cat([])
    with pytest.raises(ValueError, match=r"stack: all tensors must have the same shape, got \[\(2, 3\), \(3, 2"):
        minildm.stack([x, leaf(np.ones((3, 2)))])
    with pytest.raises(ValueError, match=r"permute: \(0, 0\) is not a permutation"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="permute: axis 3 is out of range"):
        x.permute(0, 3)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast shape \(2, 3\) to \(3, 3\)"):
        x.expand(3, 3)
    with pytest.raises(ValueError, match=r"split: sizes \[1, 2\] do not add up to 2 along axis 0 of shape \(2, 3\)"):
        x.split([1, 2])
    with pytest.raises(ValueError, match="chunk: number of chunks must be a positive int"):
        x.chunk(0)
