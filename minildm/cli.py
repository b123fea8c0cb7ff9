"""The command line: ``python -m minildm <command> [options]`` (or ``minildm <command>`` once installed).

    python -m minildm demo --out demo.png      train the 2-D toy diffusion model and plot its samples
    python -m minildm info                     versions, the active backend, whether CuPy and a GPU are there

Each command is a pair of functions: ``add_<name>(subparsers)`` declares its options, and ``run_<name>(args)``
does the work by calling into the package (this file holds no logic of its own). A new command — ``sample``,
``train``, ``evaluate`` — is one more such pair and one line in ``COMMANDS``.

Errors in what the user typed (a bad number, an output path that cannot be written, ``--resume`` without a
checkpoint) print the command's usage and one line saying what is wrong, and exit with status 2, as argparse does
for its own checks — never a traceback. A training run that diverges (NaN loss) exits with status 1 and says which
step and which checkpoint; Ctrl-C exits with status 130.
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import tempfile
from pathlib import Path

from . import __version__, backend


class UsageError(Exception):
    """Something the user asked for cannot be done as asked; reported as ``<prog>: error: <message>``, exit 2."""


# -- argument types: each turns a string into a value or explains what is wrong ----------------------------------
def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def writable_file(path: Path, suffix: str) -> Path:
    """``path`` if a file with ``suffix`` can be written there (its folder is created if missing)."""
    if path.suffix.lower() != suffix:
        raise UsageError(f"{path} should end in {suffix}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name such as {path / ('demo' + suffix)}")
    writable_folder(path.parent)
    return path


def writable_folder(folder: Path) -> Path:
    """``folder``, created if missing, after proving that a file can be written in it."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"cannot write to {folder}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # the only sure test: permissions, read-only mounts, quotas...
            pass
    except OSError as e:
        raise UsageError(f"cannot write to {folder}: {e.strerror or e}") from None
    return folder


# -- demo ---------------------------------------------------------------------------------------------------------
def add_demo(subparsers) -> None:
    from .train.toy2d import Toy2DConfig  # the defaults live with the recipe
    defaults = Toy2DConfig()
    p = subparsers.add_parser("demo", help="train a tiny diffusion model on 2-D points and plot its samples",
                              description="Train a DDPM on points of a spiral (about half a minute on 2 CPU cores), "
                                          "sample it with DDPM and DDIM, and save a figure of data vs samples.")
    p.add_argument("--steps", type=positive_int, default=defaults.steps,
                   help=f"training steps (default {defaults.steps})")
    p.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="random seed (default 0)")
    p.add_argument("--samples", type=positive_int, default=defaults.num_samples,
                   help=f"points to draw with each sampler (default {defaults.num_samples})")
    p.add_argument("--out", type=Path, default=Path("demo.png"), help="the figure to write (default demo.png)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/demo"),
                   help="folder for the checkpoint and loss curve (default runs/demo)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run_demo)


def run_demo(args) -> int:
    from .train import CHECKPOINT_NAME, ResumeError, toy2d
    if args.resume and not (args.run_dir / CHECKPOINT_NAME).is_file():
        raise UsageError(f"--resume: there is no checkpoint in {args.run_dir} (run once without --resume first)")
    out = writable_file(args.out, ".png")
    run_dir = writable_folder(args.run_dir)
    config = toy2d.Toy2DConfig(steps=args.steps, seed=args.seed, num_samples=args.samples)
    try:
        result = toy2d.run(config, out, run_dir, resume=args.resume, progress=not args.no_progress)
    except ResumeError as e:  # the checkpoint is of another run (seed), or already past --steps
        raise UsageError(str(e)) from None
    print(f"trained {config.steps} steps in {result.train_seconds:.1f} s "
          f"(mean loss of the last {min(100, config.steps)} steps: {result.final_loss:.4f}); "
          f"sampled in {result.sample_seconds:.1f} s")
    print(f"mean distance to the spiral: data {result.data_distance:.3f}, DDPM samples {result.ddpm_distance:.3f}, "
          f"DDIM samples {result.ddim_distance:.3f}")
    print(f"wrote {result.figure}  (data vs DDPM and DDIM samples, loss curve)")
    print(f"wrote {result.loss_curve}")
    print(f"wrote {result.checkpoint}  (continue training with --resume --steps N)")
    return 0


# -- info ---------------------------------------------------------------------------------------------------------
def add_info(subparsers) -> None:
    p = subparsers.add_parser("info", help="show versions, the active backend and whether a GPU can be used",
                              description="Show the versions minildm runs with and whether CuPy (GPU) is usable.")
    p.set_defaults(run=run_info)


def run_info(args) -> int:
    import matplotlib
    import numpy
    import tqdm
    print(f"minildm     {__version__}")
    print(f"python      {platform.python_version()} ({platform.platform()})")
    print(f"numpy       {numpy.__version__}")
    print(f"matplotlib  {matplotlib.__version__}")
    print(f"tqdm        {tqdm.__version__}")
    print(f"backend     {backend.name()}  (choose with MINILDM_BACKEND=numpy|cupy or --backend)")
    print(f"cupy        {_cupy_status()}")
    return 0


def _cupy_status() -> str:
    """'not installed', or CuPy's version and the GPUs it sees (or why it cannot use one)."""
    if importlib.util.find_spec("cupy") is None:
        return "not installed (pip install cupy-cuda12x for a GPU)"
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
        names = [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(count)]
    except Exception as e:  # noqa: BLE001 — a broken CUDA install can raise almost anything; report, don't crash
        return f"installed but unusable: {type(e).__name__}: {e}"
    return f"{cupy.__version__}, {count} GPU(s): {', '.join(names) or 'none'}"


# -- the parser -----------------------------------------------------------------------------------------------------
COMMANDS = [add_demo, add_info]  # later: add_sample, add_img2img, add_inpaint, add_train, add_evaluate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minildm", description="Stable Diffusion in miniature, from scratch on "
                                     "NumPy (CuPy on a GPU).")
    parser.add_argument("--version", action="version", version=f"minildm {__version__}")
    parser.add_argument("--backend", choices=["numpy", "cupy"],
                        help="array backend (default: $MINILDM_BACKEND, else numpy)")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for add in COMMANDS:
        add(subparsers)
    for name, sub in subparsers.choices.items():  # each command reports its errors with its own usage line
        sub.set_defaults(parser=sub)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a message for malformed options
    if args.command is None:
        parser.print_help()
        return 2
    if args.backend:
        try:
            backend.use(args.backend)
        except ImportError as e:
            parser.error(str(e))  # exits with status 2
    try:
        return args.run(args)
    except UsageError as e:
        args.parser.error(str(e))  # prints usage + "minildm <command>: error: ...", exits with status 2
    except KeyboardInterrupt:
        print("\ninterrupted (training can continue from its last checkpoint with --resume)", file=sys.stderr)
        return 130
    except FloatingPointError as e:  # NonFiniteLossError: the run diverged; the message names step and checkpoint
        print(f"minildm {args.command}: training stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
