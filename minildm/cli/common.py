"""What every command shares: ``UsageError``, argument types that explain what is wrong, writable-path checks,
and one-line warnings on stderr."""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import textwrap
from pathlib import Path


class UsageError(Exception):
    """Something the user asked for cannot be done as asked; reported as ``<prog>: error: <message>``, exit 2."""


def warn(message: str) -> None:
    """One line on stderr, ``warning: <message>``: something the user should know, but the command goes on."""
    print(f"warning: {message}", file=sys.stderr)


def paragraphs(*texts: str) -> str:
    """Help text wrapped to 79 columns, one paragraph per argument (for ``RawDescriptionHelpFormatter``, which
    keeps the line breaks of descriptions and of epilogs with examples, but then wraps nothing itself)."""
    return "\n\n".join(textwrap.fill(" ".join(t.split()), 79) for t in texts)


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


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def unit_fraction(text: str) -> float:
    """A number in (0, 1]: a strength, the share of the sampling steps to re-run."""
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1] (greater than 0, at most 1), got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


# -- paths ----------------------------------------------------------------------------------------------------------
def writable_file(path: Path, suffix: str) -> Path:
    """``path`` if a file with ``suffix`` can be written there (its folder is created if missing)."""
    if path.suffix.lower() != suffix:
        raise UsageError(f"{path} should end in {suffix}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name such as {path / ('out' + suffix)}")
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
