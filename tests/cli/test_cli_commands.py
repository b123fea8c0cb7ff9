"""The command line: help, info, the demo end to end, and user errors (exit status 2, a message, no traceback)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def minildm(*args, cwd=None):
    """Run ``python -m minildm *args`` in a fresh interpreter; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "minildm", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_help_lists_the_commands():
    result = minildm("--help")
    assert result.returncode == 0
    for command in ("sample", "img2img", "inpaint", "train", "demo", "info"):
        assert command in result.stdout


def test_demo_help_shows_its_options():
    result = minildm("demo", "--help")
    assert result.returncode == 0
    for option in ("--steps", "--seed", "--out", "--resume"):
        assert option in result.stdout


def test_info_reports_backend_and_cupy():
    result = minildm("info")
    assert result.returncode == 0, result.stderr
    assert "backend     numpy" in result.stdout or "backend     cupy" in result.stdout
    assert "cupy" in result.stdout


def test_demo_runs_and_writes_its_files(tmp_path):
    out, run_dir = tmp_path / "figs" / "demo.png", tmp_path / "run"
    result = minildm("demo", "--steps", 15, "--samples", 20, "--out", out, "--run-dir", run_dir, "--no-progress")
    assert result.returncode == 0, result.stderr
    for path in (out, run_dir / "loss.png", run_dir / "checkpoint.safetensors"):
        assert path.stat().st_size > 0
        assert str(path) in result.stdout  # the user is told where each file went
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --resume continues the same run for more steps
    again = minildm("demo", "--steps", 20, "--samples", 20, "--out", out, "--run-dir", run_dir, "--resume",
                    "--no-progress")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("args, message", [
    (["demo", "--steps", "0"], "--steps: must be a positive integer"),
    (["demo", "--steps", "many"], "--steps: must be an integer"),
    (["demo", "--seed", "-1"], "--seed: must be an integer >= 0"),
    (["demo", "--out", "demo.jpg"], "should end in .png"),
    (["demo", "--out", "{file}/demo.png"], "is a file, not a folder"),
    (["demo", "--run-dir", "{tmp}/no-run", "--resume"], "no checkpoint"),
    (["nonsense"], "invalid choice"),
    (["--backend", "tpu", "info"], "invalid choice"),
])
def test_user_errors_exit_2_with_a_message(tmp_path, args, message):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    result = minildm(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_no_command_prints_help_and_exits_2():
    result = minildm()
    assert result.returncode == 2
    assert "demo" in result.stdout
