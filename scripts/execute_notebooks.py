"""Execute the notebooks in place, so they are committed with their outputs and read on GitHub.

    python scripts/execute_notebooks.py                          # every notebooks/*.ipynb
    python scripts/execute_notebooks.py notebooks/02_*.ipynb     # some of them
    python scripts/execute_notebooks.py --check                  # run them, write nothing (exit 1 on any error)

Each notebook runs top to bottom in a fresh ``python3`` kernel (``pip install -e ".[test]"`` provides ipykernel),
the way a reader runs it:

- working directory ``notebooks/``, and the repository on ``PYTHONPATH``, so ``import minildm`` works even from a
  checkout that was not ``pip install``-ed;
- ``MINILDM_BACKEND=numpy``: the committed outputs are the CPU ones, reproducible on any machine (pass
  ``--keep-backend`` to run on whatever ``MINILDM_BACKEND`` says, e.g. to try the notebooks on CuPy);
- matplotlib's inline backend (``MPLBACKEND``), so no display is needed; figures become PNG outputs.

The first error stops that notebook, prints the failing cell's traceback, leaves the file untouched and makes the
script exit with status 1. Timing metadata is not recorded, so re-executing changes only what really changed.
``tests/notebooks/test_notebooks.py`` executes the notebooks with the same ``execute`` function.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
CELL_TIMEOUT = 300  # seconds; a cell that needs longer is a bug in a notebook meant to run in under two minutes


def kernel_environment(keep_backend: bool = False) -> dict:
    """The environment the kernel starts with (a copy of ours, plus the settings described above)."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if not keep_backend:
        env["MINILDM_BACKEND"] = "numpy"
    return env


def execute(nb, timeout: int = CELL_TIMEOUT, keep_backend: bool = False, then=None) -> float:
    """Execute the notebook ``nb`` (an ``nbformat`` node) in place, in a fresh kernel; returns the seconds it took.

    Args:
        timeout: limit per cell, in seconds.
        then: optional ``then(client)``, called after the last cell while the kernel is still alive, so a caller can
            run more cells in the same session (the test runs the exercise solutions this way).
    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message holds its source and traceback.
    """
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    with client.setup_kernel(env=kernel_environment(keep_backend)):
        info = client.wait_for_reply(client.kc.kernel_info())
        if info is not None and "language_info" in info["content"]:
            nb.metadata["language_info"] = info["content"]["language_info"]
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        if then is not None:
            then(client)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="execute only; do not write the notebooks back")
    parser.add_argument("--keep-backend", action="store_true", help="use MINILDM_BACKEND as set (default: numpy)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds allowed per cell")
    args = parser.parse_args(argv)

    import nbformat
    from nbclient.exceptions import CellExecutionError

    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks found in {NOTEBOOKS}")
        return 1
    failed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        try:
            seconds = execute(nb, timeout=args.timeout, keep_backend=args.keep_backend)
        except CellExecutionError as error:
            print(f"FAILED {path.name}:\n{error}", file=sys.stderr)
            failed.append(path.name)
            continue
        if not args.check:
            nbformat.write(nb, path)
        size = path.stat().st_size / 2 ** 20
        print(f"{path.name}: executed in {seconds:.1f} s" + ("" if args.check else f", written ({size:.2f} MB)"))
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
