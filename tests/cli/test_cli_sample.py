"""`sample`, `img2img`, `inpaint` on the tiny fixture pipeline: PNG grids of the right size, the unknown-word warning,
and user errors (exit status 2, one message, no traceback). Most runs call ``main(argv)`` in-process (fast); a few
go through ``python -m minildm`` to check the real entry point."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minildm.cli import build_parser, main
from minildm.cli import generate

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "fixtures" / "pipeline_tiny"  # 16x16 images, multiples of 4, DDIM, guidance 7.5
FAST = ["--model", TINY, "--steps", "2", "--no-progress"]


def cli(capsys, *args):
    """``main(args)`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse and UsageError exit through parser.error
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def minildm(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "minildm", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def grid_size(n, side=16):
    """(width, height) of the PNG of n side x side images: ⌈√n⌉ columns, GRID_PADDING white pixels between."""
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = generate.GRID_PADDING
    return cols * side + (cols - 1) * pad, rows * side + (rows - 1) * pad


@pytest.fixture
def pictures(tmp_path):
    """A 16x16 image with a red square, a mask of its bottom-right quarter, and some bad files."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:10, 4:10] = (255, 0, 0)
    Image.fromarray(image).save(tmp_path / "in.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[8:, 8:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros((15, 16, 3), np.uint8)).save(tmp_path / "odd.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small_mask.png")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "folder_without_model").mkdir()
    return tmp_path


# -- it works ---------------------------------------------------------------------------------------------------------
def test_sample_writes_a_grid_of_n_images(tmp_path, capsys):
    out = tmp_path / "out" / "grid.png"
    code, stdout, stderr = cli(capsys, "sample", "a red circle at the top left", "-n", 5, "--out", out, *FAST)
    assert code == 0, stderr
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.mode == "RGB"
        assert picture.size == grid_size(5)
    assert str(out) in stdout and "5 image(s) of 16x16" in stdout
    assert " s" in stdout.splitlines()[-1]  # the time taken


@pytest.mark.parametrize("scheduler", ["ddim", "dpm", "ddpm"])
def test_sample_options_and_same_seed_same_images(tmp_path, capsys, scheduler):
    args = ["sample", "a blue square", "-n", 2, "--scheduler", scheduler, "--guidance", 3, "--seed", 7,
            "--negative-prompt", "a red circle", *FAST]
    code, stdout, stderr = cli(capsys, *args, "--out", tmp_path / "a.png")
    assert code == 0, stderr
    assert "guidance 3" in stdout and "seed 7" in stdout
    assert cli(capsys, *args, "--out", tmp_path / "b.png")[0] == 0
    a, b = (np.asarray(Image.open(tmp_path / name)) for name in ("a.png", "b.png"))
    np.testing.assert_array_equal(a, b)


def test_unknown_word_is_a_warning_and_generation_goes_on(tmp_path, capsys):
    code, stdout, stderr = cli(capsys, "sample", "a crimson circle", "-n", 1, "--out", tmp_path / "g.png", *FAST)
    assert code == 0, stderr
    assert ("warning: 'crimson' is not in the model's vocabulary; the tokenizer splits it into 'cri' 'm' 's' 'on', "
            "so the model has likely never seen it") in stderr
    assert "'circle'" not in stderr  # known words are not mentioned
    assert (tmp_path / "g.png").is_file()


def test_img2img_writes_a_grid(pictures, capsys):
    out = pictures / "i2i.png"
    code, stdout, stderr = cli(capsys, "img2img", "a blue square", "--image", pictures / "in.png", "--strength", 0.5,
                               "-n", 2, "--out", out, *FAST)
    assert code == 0, stderr
    assert Image.open(out).size == grid_size(2)
    assert str(out) in stdout


def test_inpaint_writes_a_grid(pictures, capsys):
    out = pictures / "inpainted.png"
    code, stdout, stderr = cli(capsys, "inpaint", "a green triangle", "--image", pictures / "in.png", "--mask",
                               pictures / "mask.png", "-n", 3, "--out", out, *FAST)
    assert code == 0, stderr
    assert Image.open(out).size == grid_size(3)


def test_the_default_model_is_the_shipped_folder_in_the_package():
    import minildm
    assert generate.SHIPPED_MODEL == Path(minildm.__file__).resolve().parent / "weights" / "shapes"
    assert build_parser().parse_args(["sample", "x"]).model == generate.SHIPPED_MODEL


def test_missing_shipped_model_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(generate, "SHIPPED_MODEL", tmp_path / "weights" / "shapes")
    code, stdout, stderr = cli(capsys, "sample", "a red circle", "--out", tmp_path / "g.png")
    assert code == 2
    assert f"model folder {tmp_path / 'weights' / 'shapes'} not found" in stderr
    assert "python -m minildm train all --preset shapes" in stderr


def test_sample_with_the_shipped_model(tmp_path, capsys):
    code, stdout, stderr = cli(capsys, "sample", "a red circle at the top left", "-n", 1, "--steps", 2,
                               "--no-progress", "--out", tmp_path / "g.png")
    assert code == 0, stderr
    assert "warning" not in stderr  # the shipped tokenizer knows every caption word


# -- user errors: exit 2, one line saying what is wrong, never a traceback ---------------------------------------
IMG = ["img2img", "a red circle", "--model", TINY]
INP = ["inpaint", "a red circle", "--model", TINY, "--image", "{tmp}/in.png"]
USER_ERRORS = [
    (["sample", "", "--model", TINY], "the prompt is empty"),
    (["sample", "   ", "--model", TINY], "the prompt is empty"),
    (["sample", "x", "--model", "{tmp}/nope"], "model folder {tmp}/nope not found; the shipped model lives in"),
    (["sample", "x", "--model", "{tmp}/folder_without_model"], "is not a model folder: it has no model_index.json"),
    (["sample", "x", "--model", TINY, "--steps", "0"], "argument --steps: must be a positive integer"),
    (["sample", "x", "--model", TINY, "-n", "0"], "argument -n/--num-images: must be a positive integer"),
    (["sample", "x", "--model", TINY, "--guidance", "-1"], "argument --guidance: must be a number >= 0"),
    (["sample", "x", "--model", TINY, "--guidance", "nan"], "argument --guidance: must be a finite number"),
    (["sample", "x", "--model", TINY, "--seed", "-3"], "argument --seed: must be an integer >= 0"),
    (["sample", "x", "--model", TINY, "--scheduler", "euler"], "argument --scheduler: invalid choice: 'euler'"),
    (["sample", "x", "--model", TINY, "--out", "{tmp}/grid.jpg"], "should end in .png"),
    (["sample", "x", "--model", TINY, "--out", "{tmp}/in.png/grid.png"], "is a file, not a folder"),
    ([*IMG], "the following arguments are required: --image"),
    ([*IMG, "--image", "{tmp}/missing.png"], "--image: image file {tmp}/missing.png not found"),
    ([*IMG, "--image", "{tmp}/text.png"], "is not an image file"),
    ([*IMG, "--image", "{tmp}"], "is a folder, not an image file"),
    ([*IMG, "--image", "{tmp}/odd.png"], "is 16x15 pixels; this model expects 16x16"),
    ([*IMG, "--image", "{tmp}/in.png", "--strength", "0"], "argument --strength: must be a number in (0, 1]"),
    ([*IMG, "--image", "{tmp}/in.png", "--strength", "1.5"], "argument --strength: must be a number in (0, 1]"),
    ([*IMG, "--image", "{tmp}/in.png", "--strength", "0.1", "--steps", "5"], "re-runs int(5 x 0.1) = 0 steps"),
    ([*INP], "the following arguments are required: --mask"),
    ([*INP, "--mask", "{tmp}/small_mask.png"], "is 8x8 pixels but --image {tmp}/in.png is 16x16"),
    ([*INP, "--mask", "{tmp}/text.png"], "--mask: {tmp}/text.png is not an image file"),
]


@pytest.mark.parametrize("args, message", USER_ERRORS)
def test_user_errors_exit_2_with_a_message(pictures, capsys, args, message):
    args = [str(a).format(tmp=pictures) for a in args]
    code, stdout, stderr = cli(capsys, *args, "--no-progress")
    assert code == 2
    assert message.format(tmp=pictures) in stderr
    assert "Traceback" not in stdout + stderr


def test_user_errors_through_the_real_entry_point(pictures):
    for args, message in [(["sample", "x", "--model", pictures / "nope"], "not found"),
                          ([*IMG, "--image", pictures / "text.png"], "is not an image file")]:
        result = minildm(*args, cwd=pictures)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr + result.stdout


# -- help ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["sample", "img2img", "inpaint", "train", "demo", "info"])
def test_help_explains_every_option(capsys, command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    code, stdout, _ = cli(capsys, command, "--help")
    assert code == 0
    for action in sub._actions:
        assert action.help, f"{command}: {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in stdout
