"""Atomic file writes: a file is either the complete old version or the complete new one, never half of each.

Writing a checkpoint in place is dangerous: a crash, a full disk or a Ctrl-C in the middle leaves a truncated file
and the previous good checkpoint is gone too. Instead we

1. write everything to a temporary file in the *same folder* (``.name.xxxx.tmp``),
2. ``flush`` Python's buffer and ``os.fsync`` the file, so the bytes are on disk and not only in the OS cache,
3. ``os.replace`` it onto the final name — a rename within one file system, which POSIX and Windows perform
   atomically: readers see the old file or the new one, nothing in between,
4. ``fsync`` the folder (POSIX), so the rename itself survives a power cut.

If anything fails before step 3, the temporary file is deleted and the old file is untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Context manager yielding a file object; on a clean exit the file appears at ``path`` all at once.

        with atomic_write("model.safetensors") as f:
            f.write(header)
            f.write(data)

    Args:
        path: the final file name (its folder must exist).
        mode: ``"wb"`` for bytes or ``"w"`` for text (UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _new_file_mode())  # mkstemp makes owner-only files; give the usual permissions
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: rw for all, minus the process umask."""
    umask = os.umask(0)  # the only portable way to read the umask is to set it and put it back
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX only; Windows cannot open a folder for fsync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not support fsync on folders; the rename has happened anyway
        pass
    finally:
        os.close(fd)
