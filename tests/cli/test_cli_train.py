"""`train {clip,vae,unet,all}` wired to the recipes: the tiny preset end to end into a loadable pipeline folder,
--resume, and the errors (usage: exit 2; a diverged run: exit 1 with the guard's message)."""
import math
from pathlib import Path

import pytest

from minildm.cli import main
from minildm.train import NonFiniteLossError


def cli(capsys, *args):
    """``main(args)`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_all_tiny_writes_a_pipeline_that_samples(tmp_path, capsys):
    from minildm.pipelines import StableDiffusionPipeline

    run = tmp_path / "runs" / "tiny"
    # --steps 3 instead of the preset's 12 keeps this test at a few seconds; the recipes' own tests train longer
    code, stdout, stderr = cli(capsys, "train", "all", "--preset", "tiny", "--out", run, "--steps", 3,
                               "--no-progress")
    assert code == 0, stderr
    pipeline = run / "pipeline"
    for part in ("clip", "vae", "unet"):
        assert f"{part}: 3 steps" in stdout
        assert (run / part / "checkpoint.safetensors").is_file()
    assert f"wrote {pipeline}" in stdout and f"--model {pipeline}" in stdout  # where it went, how to use it
    assert StableDiffusionPipeline.from_pretrained(pipeline).guidance_scale > 0  # a loadable folder

    out = tmp_path / "grid.png"
    code, stdout, stderr = cli(capsys, "sample", "a red circle at the top left", "-n", 4, "--model", pipeline,
                               "--steps", 2, "--no-progress", "--out", out)
    assert code == 0, stderr
    assert "warning" not in stderr  # its tokenizer was trained on the captions: every caption word is whole
    from PIL import Image
    assert Image.open(out).size == (2 * 32 + 2, 2 * 32 + 2)  # 2x2 grid of 32x32 images, 2 white pixels between

    code, _, stderr = cli(capsys, "sample", "a red circle", "--model", run, "--out", out)  # the run, not its model
    assert code == 2 and f"pass --model {pipeline}" in stderr


def test_train_one_part_then_resume_it(tmp_path, capsys):
    code, stdout, stderr = cli(capsys, "train", "clip", "--preset", "tiny", "--out", tmp_path, "--steps", 2,
                               "--no-progress")
    assert code == 0, stderr
    assert "clip: 2 steps" in stdout and (tmp_path / "clip" / "text_encoder").is_dir()

    code, stdout, stderr = cli(capsys, "train", "clip", "--preset", "tiny", "--out", tmp_path, "--steps", 3,
                               "--resume", "--no-progress")
    assert code == 0, stderr
    assert "clip: 3 steps" in stdout  # the loss history of the whole run: 2 before, 1 now

    # a checkpoint of the tiny preset cannot continue as the shapes preset (other model sizes)
    code, _, stderr = cli(capsys, "train", "clip", "--out", tmp_path, "--resume")
    assert code == 2 and "was trained with --preset tiny, not shapes" in stderr
    # already past --steps
    code, _, stderr = cli(capsys, "train", "clip", "--preset", "tiny", "--out", tmp_path, "--resume", "--steps", 1)
    assert code == 2 and "past total_steps=1" in stderr
    # from scratch over an existing checkpoint: allowed, with a warning
    code, _, stderr = cli(capsys, "train", "clip", "--preset", "tiny", "--out", tmp_path, "--steps", 1,
                          "--no-progress")
    assert code == 0 and "warning:" in stderr and "--resume continues it" in stderr


def test_a_diverged_run_exits_1_with_the_guards_message(tmp_path, capsys, monkeypatch):
    import minildm.train.autoencoder as recipe

    def diverge(*args, **kwargs):
        raise NonFiniteLossError("loss", math.nan, 5, tmp_path / "vae" / "checkpoint.safetensors", 4)

    monkeypatch.setattr(recipe, "train_autoencoder", diverge)
    code, _, stderr = cli(capsys, "train", "vae", "--preset", "tiny", "--out", tmp_path, "--no-progress")
    assert code == 1
    assert "loss is nan at step 5; last good checkpoint:" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("args, message", [
    (["train", "unet", "--preset", "tiny", "--out", "{tmp}"], "train unet needs the trained clip and vae in"),
    (["train", "vae", "--preset", "tiny", "--out", "{tmp}", "--resume"], "--resume: there is no checkpoint in"),
    (["train", "all", "--preset", "tiny", "--out", "{tmp}", "--resume"], "--resume: there is no checkpoint in"),
    (["train", "vae", "--preset", "tiny", "--out", "{tmp}", "--pipeline", "{tmp}/p"], "--pipeline is only for"),
    (["train", "vae", "--out", "{tmp}/a_file/run"], "is a file, not a folder"),
    (["train", "vae", "--steps", "0"], "argument --steps: must be a positive integer"),
    (["train", "vae", "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["train", "everything"], "invalid choice: 'everything'"),
    (["train"], "the following arguments are required: part"),
])
def test_user_errors_exit_2_with_a_message(tmp_path, capsys, args, message):
    (tmp_path / "a_file").write_text("not a folder")
    code, stdout, stderr = cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert message.format(tmp=tmp_path) in stderr
    assert "Traceback" not in stdout + stderr
    assert not (Path(tmp_path) / "vae").exists()  # nothing was trained
