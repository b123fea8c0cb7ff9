"""The scripts that make the README's quality table and sample grid still run, and report what they generated."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluation_captions_are_the_groups_the_table_names():
    from minildm.metrics.attributes import caption_group

    captions = load_script("evaluate_shapes").evaluation_captions(3, 4, seed=5)
    assert [caption_group(c) for c in captions] == [("seen", "one")] * 3 + [("heldout", "one")] * 3 + \
        [("seen", "two")] * 2 + [("heldout", "two")] * 2


def test_evaluate_shapes_writes_a_table_row_per_guidance_and_group(tmp_path, capsys):
    script = load_script("evaluate_shapes")
    results = script.evaluate(n=2, n_two=2, guidance=[1.0, 3.0], steps=2, out=tmp_path)
    assert results["settings"]["guidance"] == [1.0, 3.0]
    for scale in ("1", "3"):
        assert {g: results[scale][g]["n"] for g in script.ROWS} == {"seen/one": 2, "heldout/one": 2, "seen/two": 1,
                                                                   "heldout/two": 1}
    table = (tmp_path / "table.md").read_text(encoding="utf-8").splitlines()
    assert len(table) == 2 + 2 * 4 and table[2].startswith("| 1 | seen, one object | 2 |")
    assert json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))["3"]["seen/one"]["n"] == 2
    assert (tmp_path / "samples_guidance_3.png").stat().st_size > 0
    assert "| 3 | heldout, two objects | 1 |" in capsys.readouterr().out


def test_readme_samples_writes_the_grid(tmp_path):
    out = tmp_path / "samples.png"
    assert load_script("readme_samples").main(out) == 0
    assert out.stat().st_size > 10_000
