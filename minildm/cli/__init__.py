"""The command line: ``python -m minildm <command> [options]`` (or ``minildm <command>`` once installed).

    python -m minildm sample "a red circle at the top left"    text -> images, one PNG grid
    python -m minildm img2img "..." --image in.png             redraw an image following a prompt
    python -m minildm inpaint "..." --image in.png --mask m.png   repaint the white part of the mask
    python -m minildm train all --preset shapes                train a model folder with minildm's recipes
    python -m minildm evaluate --n 500                         FD_minildm, KID, CLIP score, attributes vs guidance
    python -m minildm demo --out demo.png                      train the 2-D toy diffusion model, plot its samples
    python -m minildm info                                     versions, the backend, whether CuPy and a GPU are there

Each command is a pair of functions: ``add_<name>(subparsers)`` declares its options (every one with a help line),
and ``run_<name>(args)`` does the work by calling into the package; the files here hold no logic of their own:

    common.py     UsageError, argument types that explain what is wrong, writable-path checks, warn()
    basic.py      demo, info
    generate.py   sample, img2img, inpaint (the pipelines)
    train.py      train (the recipes of minildm.train)
    evaluate.py   evaluate (minildm.metrics.evaluate)

A new command is one more such pair and one line in ``COMMANDS``.

Errors in what the user typed (a bad number, a missing model folder or image, an empty prompt, an output path that
cannot be written, ``--resume`` without a checkpoint) print the command's usage and one line saying what is wrong,
and exit with status 2, as argparse does for its own checks — never a traceback. Things worth knowing that do not
stop the command (a prompt word the model has never seen) are one ``warning: ...`` line on stderr. A training run
that diverges (NaN loss) exits with status 1 and says which step and which checkpoint; Ctrl-C exits with status 130.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__, backend
from .basic import add_demo, add_info, run_demo, run_info
from .common import (UsageError, non_negative_float, non_negative_int, positive_int, unit_fraction, warn,
                     writable_file, writable_folder)
from .evaluate import add_evaluate, run_evaluate
from .generate import add_img2img, add_inpaint, add_sample, run_img2img, run_inpaint, run_sample
from .train import add_train, run_train

COMMANDS = [add_sample, add_img2img, add_inpaint, add_train, add_evaluate, add_demo, add_info]

__all__ = ["main", "build_parser", "COMMANDS", "UsageError", "positive_int", "non_negative_int",
           "non_negative_float", "unit_fraction", "writable_file", "writable_folder", "warn",
           "run_sample", "run_img2img", "run_inpaint", "run_train", "run_evaluate", "run_demo", "run_info"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minildm", description="Stable Diffusion in miniature, from scratch on "
                                     "NumPy (CuPy on a GPU). `python -m minildm <command> --help` explains a "
                                     "command's options.")
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
