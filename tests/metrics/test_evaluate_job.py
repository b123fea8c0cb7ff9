"""``evaluate`` end to end on a tiny random pipeline: every number, file and refusal is there (quality is not)."""
import argparse
import json

import numpy as np
import pytest

from metrics_support import eval_networks, tiny_pipeline
from minildm.cli.evaluate import evaluate_main
from minildm.metrics.evaluate import add_evaluate_arguments, evaluate, format_table, guidance_list


def test_evaluate_writes_table_json_and_plot(tmp_path):
    nets = eval_networks()
    results = evaluate(tiny_pipeline(), n=140, guidance=(1, 3), steps=2, out=tmp_path, nets=nets, batch_size=50,
                       progress=False, label="tiny")
    assert results["n_per_guidance"] == 70 and [r["guidance_scale"] for r in results["generated"]] == [1.0, 3.0]
    real, random_model = results["real"], results["generated"][0]
    assert real["attributes"]["all"]["all"] == 1.0 and real["r_precision"] > 0.8
    assert random_model["FD_minildm"] > 3 * real["FD_minildm"]   # random weights draw nothing like the data
    assert random_model["clip_score"] < real["clip_score"]
    for name in ("metrics.json", "table.md", "tradeoff.png", "samples_guidance_1.png", "samples_guidance_3.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["generated"][1]["KID_minildm"]["subset_size"] == 70 and "not FID" in saved["note"]
    table = format_table(results)
    assert "FD_minildm" in table and "real (floor)" in table and table.count("\n") == 4


def test_evaluate_refuses_too_few_images_and_the_judges_seeds():
    with pytest.raises(ValueError, match="FD needs more than 64"):
        evaluate(tiny_pipeline(), n=100, guidance=(1, 3), nets=eval_networks(), progress=False)
    with pytest.raises(ValueError, match="evaluation networks were trained on"):
        evaluate(tiny_pipeline(), n=100, guidance=(1,), seed=2024, nets=eval_networks(), progress=False)


def test_command_line_options(tmp_path, capsys):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    args = parser.parse_args(["--model", str(tmp_path / "model"), "--n", "66", "--guidance", "2", "--steps", "2",
                              "--scheduler", "dpm", "--out", str(tmp_path / "out"), "--no-progress"])
    assert evaluate_main(args) == 0
    assert "DPMSolverMultistepScheduler" in (tmp_path / "out" / "metrics.json").read_text()
    assert "| generated | 2 |" in capsys.readouterr().out
    assert guidance_list("1, 3,7.5") == [1.0, 3.0, 7.5]
    with pytest.raises(ValueError, match="--guidance"):
        guidance_list("1,x")
    np.testing.assert_equal(guidance_list("0"), [0.0])
