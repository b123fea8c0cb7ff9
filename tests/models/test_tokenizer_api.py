"""CLIPTokenizer's interface: the SD call, padding options, special tokens, files, unknown words, clear errors."""
import json

import numpy as np
import pytest
from helpers import FIXTURES

from minildm.models.bpe import base_vocabulary, load_vocab
from minildm.models.tokenizer import CLIPTokenizer, WordSplit

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@pytest.fixture(scope="module")
def tok():
    return CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer")


def tiny_tokenizer(**kwargs):
    """Bytes + merges that spell "red</w>" and "the</w>", so every expected id below can be worked out by hand."""
    merges = [("r", "e"), ("re", "d</w>"), ("t", "h"), ("th", "e</w>")]
    tokens = base_vocabulary() + [a + b for a, b in merges] + [BOS, EOS]
    return CLIPTokenizer({t: i for i, t in enumerate(tokens)}, merges, **kwargs)


def test_bpe_applies_merges_by_rank():
    tok = tiny_tokenizer()
    assert tok.tokenize("Red the") == ["red</w>", "the</w>"]
    assert tok.tokenize("redo") == ["re", "d", "o</w>"]  # "d</w>" only ends a word, so "re"+"d" cannot fuse here
    assert tok.tokenize("thethe") == ["th", "e", "the</w>"]
    red, the = tok.convert_tokens_to_ids(["red</w>", "the</w>"])
    assert (red, the) == (513, 515)
    assert tok.encode("the red") == [tok.bos_token_id, the, red, tok.eos_token_id]


def test_default_call_is_stable_diffusions(tok):
    enc = tok(["a red circle", "a blue square at the top left"])
    assert enc.input_ids.shape == enc.attention_mask.shape == (2, 77)
    assert enc.input_ids.dtype == np.int64
    n = len(tok.encode("a red circle"))
    assert enc.attention_mask[0].tolist() == [1] * n + [0] * (77 - n)
    assert (enc.input_ids[0, n:] == tok.pad_token_id).all()
    assert enc["input_ids"] is enc.input_ids  # a dict that also reads as attributes
    assert tok("one prompt").input_ids.shape == (1, 77)


def test_padding_options(tok):
    prompts = ["a red circle", "a"]
    longest = tok(prompts, padding="longest")
    assert longest.input_ids.shape == (2, len(tok.encode("a red circle")))
    assert tok(prompts, padding=True).input_ids.tolist() == longest.input_ids.tolist()
    lists = tok(prompts, padding=False, return_tensors=None)
    assert lists.input_ids == [tok.encode(p) for p in prompts]
    assert tok("a", padding=False, return_tensors=None).input_ids == tok.encode("a")  # single string: flat list
    with pytest.raises(ValueError, match="different lengths"):
        tok(prompts, padding=False)
    assert tok(prompts, max_length=10).input_ids.shape == (2, 10)
    assert tok(["a"], add_special_tokens=False, padding=False).input_ids.tolist() == [tok.encode("a")[1:-1]]


def test_truncation_keeps_eos_last_unless_disabled(tok):
    text = "red " * 100
    ids = tok(text, max_length=8).input_ids[0].tolist()
    assert ids == tok.encode(text)[:7] + [tok.eos_token_id]
    assert tok(text, truncation=False, padding=False, return_tensors=None).input_ids == tok.encode(text)


def test_pad_token_is_configurable():
    tok = tiny_tokenizer(pad_token="!")  # Stable Diffusion v2 pads with "!" (id 0)
    assert tok.pad_token_id == 0
    assert tok("red", max_length=6).input_ids.tolist() == [[tok.bos_token_id, 513, tok.eos_token_id, 0, 0, 0]]


def test_special_tokens_written_in_text(tok):
    assert tok.tokenize(f"a{EOS}b") == ["a</w>", EOS, "b</w>"]
    assert EOS not in tok.tokenize(EOS.upper())  # matched exactly, before lower-casing, as transformers does
    assert tok.decode(tok.encode("a red circle")) == f"{BOS}a red circle {EOS}"
    assert tok.decode(tok.encode("a red circle"), skip_special_tokens=True) == "a red circle"
    assert tok.batch_decode(tok(["a", "b"]).input_ids, skip_special_tokens=True) == ["a", "b"]
    assert tok.all_special_ids == [tok.bos_token_id, tok.eos_token_id]


def test_unknown_words_names_the_split_words(tok):
    assert tok.unknown_words("a large red circle at the top left") == []
    found = tok.unknown_words("a crimson dodecahedron, a crimson cube")
    assert [w.word for w in found] == ["crimson", "dodecahedron", "cube"]  # each once, in order
    assert all(isinstance(w, WordSplit) and len(w.pieces) > 1 for w in found)
    assert "".join(found[0].pieces) == "crimson"
    assert tok.unknown_words(f"{EOS} 7 !") == []  # special tokens, digits and single bytes are always whole
    (word,) = tok.unknown_words("ë")  # pieces of a multi-byte character show their bytes
    assert word.pieces == ["\\xc3", "\\xab"]


def test_save_pretrained_round_trip(tok, tmp_path):
    custom = CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer", pad_token="!", model_max_length=32)
    custom.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "special_tokens_map.json",
                                                         "tokenizer_config.json", "vocab.json"]
    again = CLIPTokenizer.from_pretrained(tmp_path)
    assert (again.pad_token, again.model_max_length) == ("!", 32)
    assert again.encoder == tok.encoder and again.bpe_ranks == tok.bpe_ranks
    assert load_vocab(tmp_path) == load_vocab(FIXTURES / "tokenizer")
    # The committed vocabulary files are exactly what save_pretrained writes.
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / "tokenizer" / name).read_bytes()


def test_reads_tokens_saved_as_objects(tmp_path):
    """transformers (and the SD v1 checkpoints) may store a special token as {"content": ..., "lstrip": ...}."""
    tiny_tokenizer().save_pretrained(tmp_path)
    config = {"bos_token": {"__type": "AddedToken", "content": BOS, "lstrip": False}, "model_max_length": 77}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"pad_token": {"content": "!"}}))
    tok = CLIPTokenizer.from_pretrained(tmp_path)
    assert (tok.bos_token, tok.pad_token) == (BOS, "!")
    config["model_max_length"] = int(1e30)  # what transformers saves when no limit was set
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert CLIPTokenizer.from_pretrained(tmp_path).model_max_length == 77


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        CLIPTokenizer.from_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    (tmp_path / "merges.txt").unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "merges.txt")):
        CLIPTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("line", ["r e d", "r", "r  e", " e"])
def test_malformed_merges_line_is_reported_with_its_number(tmp_path, line):
    tiny_tokenizer().save_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text(f"#version: 0.2\nr e\n{line}\n")
    with pytest.raises(ValueError, match=r"merges.txt line 3: expected two symbols"):
        CLIPTokenizer.from_pretrained(tmp_path)


def test_inconsistent_files_are_reported(tmp_path):
    tiny_tokenizer().save_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nq z\n")  # "qz" was never added to the vocabulary
    with pytest.raises(ValueError, match="merge #0 .* 'qz', which is not in the vocabulary"):
        CLIPTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(ValueError, match="vocab.json is not valid JSON"):
        CLIPTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="pad_token 'PAD' is not in the vocabulary"):
        tiny_tokenizer(pad_token="PAD")


def test_bad_arguments_are_reported(tok):
    with pytest.raises(TypeError, match="string or a list of strings"):
        tok(42)
    with pytest.raises(ValueError, match="padding="):
        tok("a", padding="max")
    with pytest.raises(ValueError, match="return_tensors="):
        tok("a", return_tensors="pt")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
