"""CLIPTextModel against transformers: tiny random text encoders saved by transformers
(tests/fixtures/text_encoder_*/, written by scripts/fixtures/text_encoder.py) load with strict=True and give the
same hidden states and pooled outputs, for both activations, both pooling rules, with and without a padding mask.
The token ids are rows of the tokenizer fixture's padded batches (EOS at varying positions)."""
import json
import shutil

import numpy as np
import pytest

from helpers import FIXTURES, assert_close, host, load_fixture, to_backend
from minildm import no_grad
from minildm.io import load_safetensors, save_safetensors
from minildm.models.text_encoder import CLIPTextModel, CLIPTextOutput

RTOL = 1e-4  # float32 against PyTorch float32; the observed error is ~5e-7
TINY = dict(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=12, eos_token_id=49, bos_token_id=48, pad_token_id=49)


@pytest.mark.parametrize("name", ["quick_gelu", "gelu", "quick_gelu_fp16"])
def test_matches_transformers(name):
    ref = load_fixture(f"text_encoder_{name}.npz")
    model = CLIPTextModel.from_pretrained(FIXTURES / f"text_encoder_{name}")
    ids, mask = to_backend(ref["input_ids"]), to_backend(ref["attention_mask"])
    with no_grad():
        plain, masked = model(ids), model(ids, attention_mask=mask)
    assert_close(plain.last_hidden_state, ref["last_hidden_state"], RTOL, what=f"{name} last_hidden_state")
    assert_close(plain.pooler_output, ref["pooler_output"], RTOL, what=f"{name} pooler_output")
    assert_close(masked.last_hidden_state, ref["masked_last_hidden_state"], RTOL, what=f"{name} masked hidden")
    assert_close(masked.pooler_output, ref["masked_pooler_output"], RTOL, what=f"{name} masked pooled")
    assert plain[0] is plain.last_hidden_state  # diffusers' text_encoder(ids)[0]


def test_the_fixture_ids_exercise_both_pooling_rules():
    ids = load_fixture("text_encoder_gelu.npz")["input_ids"]
    first_eos = (ids == 799).argmax(axis=1)
    assert len(set(first_eos.tolist())) >= 4  # the end-of-text token at several positions
    assert not (ids[-1] == 799).any() and ids[-1].argmax() != 0  # here the legacy and the eos-id rules differ


def test_pooling_follows_eos_token_id():
    ids = np.array([[48, 5, 7, 49, 49, 49], [48, 5, 7, 9, 11, 49], [3, 48, 5, 7, 9, 11]])  # no EOS in the last row
    modern = CLIPTextModel.from_config(TINY, generator=0)
    legacy = CLIPTextModel.from_config({**TINY, "eos_token_id": 2}, generator=0)
    with no_grad():
        out_modern, out_legacy = modern(to_backend(ids)), legacy(to_backend(ids))
    hidden = host(out_modern.last_hidden_state)
    assert np.array_equal(host(out_modern.pooler_output), hidden[[0, 1, 2], [3, 5, 0]])  # first 49, else 0
    assert np.array_equal(host(out_legacy.pooler_output), hidden[[0, 1, 2], [3, 5, 1]])  # largest id


def test_attention_is_causal_and_padding_keys_are_ignored():
    model = CLIPTextModel.from_config(TINY, generator=1)
    ids = np.array([[48, 5, 7, 9, 49, 49, 49]])
    changed = ids.copy()
    changed[0, 5] = 20  # change one padding token
    mask = to_backend(np.array([[1, 1, 1, 1, 1, 0, 0]]))
    with no_grad():
        a, b = host(model(to_backend(ids)).last_hidden_state), host(model(to_backend(changed)).last_hidden_state)
        am = host(model(to_backend(ids), attention_mask=mask).last_hidden_state)
        bm = host(model(to_backend(changed), attention_mask=mask).last_hidden_state)
    assert np.array_equal(a[:, :5], b[:, :5])  # causal: earlier tokens never see a later one
    assert not np.allclose(a[:, 6], b[:, 6])  # unmasked, token 6 reads token 5 ...
    assert_close(am[:, 6], bm[:, 6], 1e-6, what="masked key")  # ... masked, it does not
    assert_close(am[:, :5], a[:, :5], 1e-6)  # and masking later keys changes nothing before them


def test_hidden_states_are_returned_on_request():
    model = CLIPTextModel.from_config(TINY, generator=0)
    ids = to_backend(np.array([[48, 1, 2, 49]]))
    with no_grad():
        out = model(ids, output_hidden_states=True)
    assert out.hidden_states is not None and len(out.hidden_states) == 3
    assert all(h.shape == (1, 4, 16) for h in out.hidden_states)
    final = model.text_model.final_layer_norm
    with no_grad():
        assert_close(final(out.hidden_states[-1]), host(out.last_hidden_state), 1e-6)
    assert model(ids).hidden_states is None


def test_save_in_transformers_4_layout_and_reload(tmp_path):
    model = CLIPTextModel.from_pretrained(FIXTURES / "text_encoder_gelu")
    model.save_pretrained(tmp_path / "te")
    config = json.loads((tmp_path / "te" / "config.json").read_text())
    assert config["architectures"] == ["CLIPTextModel"] and config["model_type"] == "clip_text_model"
    assert config["hidden_act"] == "gelu" and config["eos_token_id"] == 2 and "_class_name" not in config
    weights = load_safetensors(tmp_path / "te" / "model.safetensors")
    assert "text_model.encoder.layers.0.self_attn.q_proj.weight" in weights  # the prefix SD checkpoints carry
    assert "text_model.final_layer_norm.weight" in weights and "text_model.embeddings.position_ids" not in weights
    again = CLIPTextModel.from_pretrained(tmp_path / "te")
    ref = load_fixture("text_encoder_gelu.npz")
    with no_grad():
        assert_close(again(to_backend(ref["input_ids"])).pooler_output, ref["pooler_output"], RTOL)


def test_old_checkpoints_with_position_ids_load(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "text_encoder_quick_gelu", folder)
    weights = {f"text_model.{k}": v for k, v in load_safetensors(folder / "model.safetensors").items()}
    weights["text_model.embeddings.position_ids"] = np.arange(77, dtype=np.int64)[None]
    save_safetensors(weights, folder / "model.safetensors")
    model = CLIPTextModel.from_pretrained(folder)
    ref = load_fixture("text_encoder_quick_gelu.npz")
    with no_grad():
        assert_close(model(to_backend(ref["input_ids"])).last_hidden_state, ref["last_hidden_state"], RTOL)


def test_unknown_transformers_config_keys_are_ignored_quietly(recwarn):
    config = json.loads((FIXTURES / "text_encoder_gelu" / "config.json").read_text())
    config.update(dropout=0.0, torch_dtype="float32", _name_or_path="openai/clip-vit-large-patch14")
    CLIPTextModel.from_config(config)
    assert not [w for w in recwarn if "ignoring" in str(w.message)]
    with pytest.warns(UserWarning, match="made_up_option"):
        CLIPTextModel.from_config({**TINY, "made_up_option": 1})


# -- errors -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, words", [
    ({"hidden_act": "relu"}, ["hidden_act", "relu"]),
    ({"num_attention_heads": 3}, ["hidden_size=16", "num_attention_heads=3"]),
    ({"attention_dropout": 0.1}, ["attention_dropout"]),
])
def test_unsupported_config_raises_naming_it(change, words):
    with pytest.raises(ValueError) as info:
        CLIPTextModel.from_config({**TINY, **change})
    assert all(w in str(info.value) for w in words), str(info.value)


def test_wrong_inputs_name_the_module_and_the_shapes():
    model = CLIPTextModel.from_config(TINY)
    with pytest.raises(ValueError, match=r"CLIPTextModel.*\(B, T\).*\(5,\)"):
        model(to_backend(np.arange(5)))
    with pytest.raises(ValueError, match="CLIPTextModel.*integers"):
        model(to_backend(np.zeros((1, 5), np.float32)))
    with pytest.raises(ValueError, match="T=13.*max_position_embeddings=12"):
        model(to_backend(np.zeros((1, 13), np.int64)))
    with pytest.raises(ValueError, match=r"\[0, 50\).*vocab_size"):
        model(to_backend(np.array([[1, 50]])))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\).*\(1, 4\)"):
        model(to_backend(np.zeros((1, 4), np.int64)), attention_mask=to_backend(np.ones((1, 3), np.int64)))


def test_a_state_dict_that_does_not_fit_lists_every_problem(tmp_path):
    folder = tmp_path / "te"
    shutil.copytree(FIXTURES / "text_encoder_gelu", folder)
    weights = load_safetensors(folder / "model.safetensors")
    del weights["encoder.layers.1.mlp.fc2.bias"]
    weights["text_projection.weight"] = np.zeros((16, 32), np.float32)
    weights["final_layer_norm.weight"] = np.zeros(8, np.float32)
    save_safetensors(weights, folder / "model.safetensors")
    with pytest.raises(ValueError) as info:
        CLIPTextModel.from_pretrained(folder)
    for key in ["text_model.encoder.layers.1.mlp.fc2.bias", "text_projection.weight",
                "text_model.final_layer_norm.weight", "model.safetensors"]:
        assert key in str(info.value), key


def test_a_projection_model_folder_is_refused(tmp_path):
    folder = tmp_path / "te"
    shutil.copytree(FIXTURES / "text_encoder_gelu", folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["CLIPTextModelWithProjection"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="CLIPTextModelWithProjection"):
        CLIPTextModel.from_pretrained(folder)


def test_output_is_a_named_tuple():
    assert CLIPTextOutput._fields == ("last_hidden_state", "pooler_output", "hidden_states")
