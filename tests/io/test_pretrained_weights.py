"""Pretrained folders (config.json + .safetensors): round trips in float32 / float16, and clear errors for
wrong shapes, missing and unexpected keys, missing or broken config files."""
import json

import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm.io import CONFIG_NAME, WEIGHTS_NAME, load_config, load_pretrained_weights, load_safetensors
from minildm.io import save_config, save_pretrained_weights
from minildm.nn.module import Module, Parameter


class TinyModule(Module):
    """A conv-like layer with an integer buffer: enough to exercise names, shapes and dtypes."""

    def __init__(self, seed=0, channels=4):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.conv = Module()
        self.conv.weight = Parameter(to_backend(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32)))
        self.conv.bias = Parameter(to_backend(rng.standard_normal(channels).astype(np.float32)))
        self.norm = Module()
        self.norm.weight = Parameter(to_backend(rng.standard_normal(channels).astype(np.float32)))
        self.register_buffer("num_batches", to_backend(np.array(7, np.int64)))

    @property
    def params(self):
        return dict(self.named_parameters())


CONFIG = {"in_channels": 3, "block_out_channels": [4, 8], "act_fn": "silu", "scaling_factor": 0.18215}


def test_float32_round_trip_with_config(tmp_path):
    model = TinyModule(seed=0)
    path = save_pretrained_weights(model, tmp_path / "unet", CONFIG)
    assert path == tmp_path / "unet" / WEIGHTS_NAME and (tmp_path / "unet" / CONFIG_NAME).is_file()
    assert load_config(tmp_path / "unet") == CONFIG

    other = TinyModule(seed=1)
    params = other.params
    assert load_pretrained_weights(other, tmp_path / "unet") is other
    for k, p in other.params.items():
        assert np.array_equal(host(p), host(model.params[k])), k
        assert p is params[k], "the same Parameter objects (an optimizer holding them keeps working)"


def test_float16_on_disk_loads_as_the_model_dtype(tmp_path):
    model = TinyModule(seed=0)
    save_pretrained_weights(model, tmp_path, None, dtype="float16")
    on_disk = load_safetensors(tmp_path / WEIGHTS_NAME)
    assert on_disk["conv.weight"].dtype == np.float16
    assert on_disk["num_batches"].dtype == np.int64, "integer buffers keep their dtype"
    assert not (tmp_path / CONFIG_NAME).exists()
    other = TinyModule(seed=1)
    load_pretrained_weights(other, tmp_path)
    for k, p in other.params.items():
        assert p.dtype == np.float32
        assert np.array_equal(host(p), host(model.params[k]).astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="dtype must be one of"):
        save_pretrained_weights(model, tmp_path, None, dtype="bfloat16")


def test_reference_library_reads_our_folder(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    save_pretrained_weights(TinyModule(), tmp_path, CONFIG)
    with safe_open(tmp_path / WEIGHTS_NAME, framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}  # what diffusers / transformers look for
    assert sorted(safetensors_numpy.load_file(tmp_path / WEIGHTS_NAME)) == sorted(TinyModule().state_dict())
    assert json.loads((tmp_path / CONFIG_NAME).read_text()) == CONFIG


def test_wrong_shape_is_named(tmp_path):
    save_pretrained_weights(TinyModule(channels=4), tmp_path, CONFIG)
    with pytest.raises(ValueError, match="shape") as info:
        load_pretrained_weights(TinyModule(channels=5), tmp_path)
    message = str(info.value)  # worded by Module.load_state_dict; we check what it must name
    assert str(tmp_path / WEIGHTS_NAME) in message, "the error names the file"
    assert "conv.weight" in message and "(4, 3, 3, 3)" in message and "(5, 3, 3, 3)" in message


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = TinyModule().state_dict()
    del state["norm.weight"]
    state["extra.weight"] = np.zeros(2, np.float32)
    minildm.io.save_safetensors(state, tmp_path / WEIGHTS_NAME)
    with pytest.raises(ValueError, match="missing") as info:
        load_pretrained_weights(TinyModule(), tmp_path)
    message = str(info.value)
    assert "norm.weight" in message and "unexpected" in message and "extra.weight" in message
    model = load_pretrained_weights(TinyModule(seed=3), tmp_path, strict=False)  # loads what matches
    assert np.array_equal(host(model.params["conv.weight"]), state["conv.weight"])


def test_missing_files_and_bad_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        load_config(tmp_path)
    (tmp_path / CONFIG_NAME).write_text('{"in_channels": 3,')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_config(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[3]")
    with pytest.raises(ValueError, match="expected an object"):
        load_config(tmp_path)
    with pytest.raises(ValueError, match="not JSON-serializable"):
        save_config(tmp_path, {"shape": np.float32})
    minildm.io.save_safetensors({"w": np.ones(1)}, tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model.safetensors not found; the folder holds "
                                                r"\['model.safetensors'\]"):
        load_pretrained_weights(TinyModule(), tmp_path)
