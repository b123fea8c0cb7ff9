"""The Module contract: registration and names, state dicts, modes, devices/dtypes, containers, repr."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm import Tensor, backend
from minildm import nn


class Block(nn.Module):
    """A small model with every kind of member: parameters, a buffer, nested containers, a shared layer."""

    def __init__(self, generator=None):
        super().__init__()
        g = nn.init.host_generator(generator)
        self.scale = nn.Parameter(to_backend(np.ones(3, np.float32)))
        self.body = nn.Sequential(nn.Linear(4, 3, generator=g), nn.SiLU(), nn.Dropout(0.5, generator=g))
        self.heads = nn.ModuleList([nn.Linear(3, 2, generator=g), nn.Linear(3, 2, bias=False, generator=g)])
        self.shared = self.heads[0]  # the same module under a second name: its parameters appear once
        self.register_buffer("position_ids", to_backend(np.arange(5)))
        self.register_buffer("cache", to_backend(np.zeros(2, np.float32)), persistent=False)

    def forward(self, x):
        h = self.body(x) * self.scale
        return self.heads[0](h) + self.heads[1](h)


def test_named_parameters_follow_definition_order_with_dotted_names():
    names = [n for n, _ in Block().named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    model = Block()
    assert [id(p) for p in model.parameters()] == [id(p) for _, p in model.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert [n for n, _ in model.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "heads", "heads.0",
                                                     "heads.1"]
    assert model.children() == [model.body, model.heads, model.shared]  # direct children; the walk lists it once
    assert [n for n, _ in model.named_parameters(prefix="m")][:2] == ["m.scale", "m.body.0.weight"]


def test_num_parameters_and_buffers():
    model = Block()
    assert model.num_parameters() == 3 + (4 * 3 + 3) + (3 * 2 + 2) + 3 * 2
    model.heads[1].weight.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - 6
    assert [n for n, _ in model.named_buffers()] == ["position_ids", "cache"]
    assert host(model.position_ids).dtype == np.int64


def test_state_dict_round_trip_and_copies():
    a, b = Block(generator=1), Block(generator=2)
    x = to_backend(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    a.eval(), b.eval()
    state = a.state_dict()
    # PyTorch's order: a module's parameters, then its (persistent) buffers, then its children, depth first
    assert list(state) == ["scale", "position_ids", "body.0.weight", "body.0.bias", "heads.0.weight", "heads.0.bias",
                           "heads.1.weight"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.array_equal(host(a(x)), host(b(x)))
    params_before = [id(p) for p in b.parameters()]
    assert b.load_state_dict(state) == ([], [])
    assert np.array_equal(host(a(x)), host(b(x)))
    assert [id(p) for p in b.parameters()] == params_before  # same Parameter objects (optimizers keep working)
    state["body.0.weight"][:] = 123.0  # the dict is a copy: changing it changes neither model
    b.body[0].weight.data[...] = 7.0  # and the loaded arrays are not shared with the dict or with `a`
    assert host(a.body[0].weight).max() < 1 and state["body.0.weight"].max() == 123.0


def test_load_state_dict_casts_to_the_parameter_dtype():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": np.eye(2, dtype=np.float64), "bias": np.array([1.0, 2.0])})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    assert backend.get_array_module(model.weight.data) is backend.xp()
    assert_close(model(to_backend(np.array([[3.0, 4.0]], np.float32))), [[4.0, 6.0]], rtol=0)


def test_load_state_dict_reports_every_problem_in_one_message():
    model = nn.ResnetBlock2D(4, 8, temb_channels=6, groups=2)
    state = model.state_dict()
    del state["norm1.weight"], state["conv_shortcut.bias"]
    state["conv1.weight"] = np.zeros((8, 3, 3, 3), np.float32)
    state["time_emb_proj.bias"] = np.zeros(9, np.float32)
    state["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("ResnetBlock2D.load_state_dict: ")
    assert "missing keys: ['norm1.weight', 'conv_shortcut.bias']" in message
    assert "unexpected keys: ['extra.weight']" in message
    assert "conv1.weight expected (8, 4, 3, 3) got (8, 3, 3, 3)" in message
    assert "time_emb_proj.bias expected (8,) got (9,)" in message


def test_load_state_dict_non_strict_loads_what_fits():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    source = nn.Sequential(nn.Linear(2, 3, generator=5))
    state = source.state_dict()
    state["2.weight"] = np.zeros((1, 1), np.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["1.weight", "1.bias"] and unexpected == ["2.weight"]
    assert np.array_equal(host(model[0].weight), host(source[0].weight))
    with pytest.raises(ValueError, match="shape mismatch: 0.bias expected"):  # a wrong shape is never loaded
        model.load_state_dict({"0.bias": np.zeros(4, np.float32)}, strict=False)


def test_buffers_load_and_non_persistent_ones_are_not_saved():
    model = Block()
    state = model.state_dict()
    assert "cache" not in state
    state["position_ids"] = np.arange(5)[::-1].copy()
    model.load_state_dict(state)
    assert host(model.position_ids).tolist() == [4, 3, 2, 1, 0] and host(model.position_ids).dtype == np.int64
    model.position_ids = np.arange(5)  # assigning to a buffer keeps it a buffer (and on the backend)
    assert "position_ids" in model.state_dict() and backend.get_array_module(model.position_ids) is backend.xp()


def test_train_and_eval_recurse_and_dropout_follows():
    model = Block()
    x = to_backend(np.ones((64, 4), np.float32))
    assert model.training and model.body[2].training
    model.eval()
    assert not any(m.training for m in model.modules())
    assert np.array_equal(host(model.body(x)), host(model.body[1](model.body[0](x))))  # dropout is the identity
    model.train()
    assert all(m.training for m in model.modules())
    h = host(model.body(x))
    clean = host(model.body[1](model.body[0](x)))
    dropped = h == 0
    assert 0.3 < dropped.mean() < 0.7
    assert_close(h[~dropped], 2 * clean[~dropped], rtol=1e-6)  # survivors scaled by 1 / (1 - p)
    assert model.eval() is model and model.train() is model


def test_dropout_masks_are_reproducible_from_the_seed():
    x = to_backend(np.ones((8, 16), np.float32))
    a, b, c = nn.Dropout(0.5, generator=3), nn.Dropout(0.5, generator=3), nn.Dropout(0.5, generator=4)
    first = host(a(x))
    assert np.array_equal(first, host(b(x)))
    assert not np.array_equal(first, host(c(x)))
    assert not np.array_equal(first, host(a(x)))  # the stream advances: a fresh mask on each call


def test_same_seed_same_weights_and_one_generator_feeds_all_children():
    a, b = nn.ResnetBlock2D(4, 8, temb_channels=6, groups=2, generator=7), nn.ResnetBlock2D(4, 8, 6, 2, generator=7)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(host(p), host(q)), name
    c = nn.ResnetBlock2D(4, 8, temb_channels=6, groups=2, generator=8)
    assert not np.array_equal(host(a.conv1.weight), host(c.conv1.weight))
    # conv1 and conv2 of one block draw from one stream, so they differ although built alike
    d = nn.Sequential(nn.Linear(3, 3, generator=0), nn.Linear(3, 3, generator=0))
    g = backend.host_rng(0)
    e = nn.Sequential(nn.Linear(3, 3, generator=g), nn.Linear(3, 3, generator=g))
    assert np.array_equal(host(d[0].weight), host(d[1].weight))
    assert np.array_equal(host(d[0].weight), host(e[0].weight))
    assert not np.array_equal(host(e[0].weight), host(e[1].weight))
    assert np.array_equal(host(nn.Linear(3, 3).weight), host(nn.Linear(3, 3, generator=0).weight))  # None = 0


def test_initialisation_follows_pytorch():
    lin = nn.Linear(50, 400)
    w, b = host(lin.weight), host(lin.bias)
    bound = 1 / np.sqrt(50)  # Kaiming-uniform with a = sqrt(5)
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound  # the std of U(-b, b)
    assert np.abs(b).max() <= bound
    conv = nn.Conv2d(3, 200, 5)
    assert np.abs(host(conv.weight)).max() <= 1 / np.sqrt(3 * 25) and np.abs(host(conv.bias)).max() <= 1 / np.sqrt(75)
    emb = host(nn.Embedding(100, 100).weight)
    assert abs(emb.mean()) < 0.03 and abs(emb.std() - 1) < 0.03
    gn, ln = nn.GroupNorm(2, 4), nn.LayerNorm(6)
    assert (host(gn.weight) == 1).all() and (host(gn.bias) == 0).all() and (host(ln.weight) == 1).all()


def test_skip_init_draws_nothing_and_ends_with_its_block():
    # from_pretrained builds inside skip_init: shapes and dtypes as usual, zeros instead of random numbers (the
    # generator is untouched), and outside the block initialisation is back to normal, even after an error inside it
    g = backend.host_rng(0)
    with nn.init.skip_init():
        skipped = nn.Sequential(nn.Linear(5, 4, generator=g), nn.Conv2d(4, 3, 3, generator=g), nn.Embedding(7, 2))
    assert g.random() == backend.host_rng(0).random()
    drawn = nn.Sequential(nn.Linear(5, 4), nn.Conv2d(4, 3, 3), nn.Embedding(7, 2))
    for (name, p), (_, q) in zip(skipped.named_parameters(), drawn.named_parameters()):
        assert p.shape == q.shape and p.dtype == q.dtype, name
        assert not host(p).any(), f"{name}: zeros, not drawn"
    with pytest.raises(RuntimeError):
        with nn.init.skip_init():
            raise RuntimeError("inside")
    assert np.array_equal(host(nn.Linear(3, 3, generator=0).weight), host(nn.Linear(3, 3, generator=0).weight))
    assert np.abs(host(nn.Linear(50, 400).weight)).max() > 0.98 / np.sqrt(50)  # drawn again, U(-b, b)


def test_to_dtype_and_backend_keep_parameter_objects():
    model = Block()
    params = model.parameters()
    model.body[0].weight.grad = model.body[0].weight.data.copy()
    model.to("float64")
    assert model.parameters() == params and all(p.dtype == np.float64 for p in params)
    assert model.body[0].weight.grad is None
    assert host(model.position_ids).dtype == np.int64  # integer buffers keep their dtype
    x = Tensor(to_backend(np.ones((2, 4))))
    assert model.eval()(x).dtype == np.float64
    model.to("float32").to(backend.name())
    assert all(p.dtype == np.float32 for p in params)
    model.to("numpy")
    assert all(isinstance(p.data, np.ndarray) for p in params) and isinstance(model.position_ids, np.ndarray)
    model.to(backend.name())
    with pytest.raises(ValueError, match="floating dtype"):
        model.to("int32")


def test_zero_grad_and_requires_grad():
    model = nn.Linear(3, 2)
    model(to_backend(np.ones((1, 3), np.float32))).sum().backward()
    assert model.weight.grad is not None
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None
    model.requires_grad_(False)
    assert not model(to_backend(np.ones((1, 3), np.float32))).requires_grad
    model.requires_grad_(True)
    assert all(p.requires_grad for p in model.parameters())


def test_raw_arrays_and_lists_are_accepted():
    model = nn.Linear(3, 2)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = host(model(Tensor(to_backend(x))))
    assert np.array_equal(host(model(to_backend(x))), expected)
    assert np.array_equal(host(model(x)), expected)  # a host array on any backend
    assert_close(model(x.tolist()), expected, rtol=1e-6)
    assert host(nn.Embedding(5, 2)([[0, 4]])).shape == (1, 2, 2)


def test_sequential_and_module_list():
    seq = nn.Sequential(nn.Linear(2, 4), nn.SiLU(), nn.Linear(4, 1))
    x = to_backend(np.ones((3, 2), np.float32))
    assert np.array_equal(host(seq(x)), host(seq[2](seq[1](seq[0](x)))))
    assert len(seq) == 3 and seq[-1] is seq[2] and list(seq) == [seq[0], seq[1], seq[2]]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    layers = nn.ModuleList()
    layers.append(nn.Linear(1, 1)).extend([nn.Linear(1, 2)])
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    layers[1] = nn.Linear(1, 3)
    assert layers[1].out_features == 3 and len(layers) == 2
    with pytest.raises(IndexError):
        layers[2]
    with pytest.raises(TypeError):
        layers.append(lambda x: x)
    with pytest.raises(TypeError):
        layers(x)


def test_repr_is_nested_like_pytorch():
    text = repr(Block())
    assert text.startswith("Block(\n  (body): Sequential(\n    (0): Linear(in_features=4, out_features=3, bias=True)")
    assert "    (2): Dropout(p=0.5)\n  )" in text
    assert "(1): Linear(in_features=3, out_features=2, bias=False)" in text
    assert repr(nn.Conv2d(3, 8, 3, stride=2, padding=1)) == \
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"
    assert repr(nn.GroupNorm(32, 64, eps=1e-6)) == "GroupNorm(32, 64, eps=1e-06, affine=True)"
    assert repr(nn.LayerNorm(8)) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.SiLU()) == "SiLU()"
    assert "Parameter containing" in repr(nn.Linear(1, 1).bias)


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_reassigning_and_deleting_members():
    model = nn.Linear(2, 2)
    model.bias = None  # an optional parameter switched off
    assert [n for n, _ in model.named_parameters()] == ["weight"]
    model.extra = nn.Linear(2, 1)
    model.extra = 3  # no longer a module
    assert "extra" not in dict(model.named_children())
    model.extra2 = nn.Linear(2, 1)
    del model.extra2
    assert [n for n, _ in model.named_modules()] == [""]
