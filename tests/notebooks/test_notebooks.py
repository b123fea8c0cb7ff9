"""The notebooks in notebooks/: each runs top to bottom without an error, is committed executed (in order, with its
outputs), and ends with a hidden exercise checker that accepts the worked solutions and rejects nothing else.

Conventions these tests hold every notebook to (notebooks/README.md explains them to authors):
- exercise stubs live in a code cell tagged ``exercise`` (functions that raise NotImplementedError);
- their worked solutions sit in a markdown cell tagged ``solution``, in ```python fenced blocks inside <details>;
- the checker is the last code cell, tagged ``exercise-check`` and ``hide-input``, with its source hidden
  (``"jupyter": {"source_hidden": true}``); it prints one line per exercise: "✓ …", "✗ …" or "· …: not yet
  implemented".

Executing takes 10-30 s per notebook on two cores (marked slow; still part of the default run). The notebooks run
exactly as ``python scripts/execute_notebooks.py`` runs them: a fresh python3 kernel, cwd notebooks/, CPU backend.
"""
import importlib.util
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MAX_MEGABYTES = 1.5  # committed notebooks must stay readable on GitHub and cheap to clone
MARKS = ("✓", "✗", "·")  # the first character of each line the checker prints

each_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


# -- helpers --------------------------------------------------------------------------------------------------------
def _executor():
    """scripts/execute_notebooks.py as a module: the tests execute notebooks exactly as the script does."""
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tagged(nb, tag) -> list:
    return [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]


def _text(cell) -> str:
    """Everything a code cell printed (streams and plain-text results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output and "text/plain" in output.data:
            parts.append(output.data["text/plain"])
    return "".join(parts)


def _verdicts(text) -> list:
    """The checker's lines: one per exercise."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith(MARKS)]


def _solutions(nb) -> str:
    """The python code of every fenced block in the cells tagged ``solution``."""
    blocks = []
    for cell in _tagged(nb, "solution"):
        blocks += re.findall(r"```python\n(.*?)```", cell.source, flags=re.DOTALL)
    return "\n\n".join(blocks)


# -- the notebooks exist and are listed ---------------------------------------------------------------------------
def test_notebooks_exist_and_the_readme_lists_each():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"notebooks/README.md does not mention {missing}"


# -- (a) each notebook runs, and its checker accepts the solutions ------------------------------------------------
@pytest.mark.slow
@each_notebook
def test_notebook_executes_and_its_checker_accepts_the_solutions(path):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    executor = _executor()
    try:
        KernelSpecManager().get_kernel_spec(executor.KERNEL)
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel named {executor.KERNEL!r}: run `python -m ipykernel install --user`")

    nb = nbformat.read(path, as_version=4)
    check_cell = _tagged(nb, "exercise-check")[-1]
    solutions = _solutions(nb)
    assert solutions, f"{path.name}: no ```python block in a cell tagged 'solution'"
    after = {}

    def run_solutions_then_check(client):
        # Same kernel, after the last cell: define the worked solutions, then run the checker again.
        for source in (solutions, check_cell.source):
            cell = nbformat.v4.new_code_cell(source)
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
        after["verdicts"] = _verdicts(_text(nb.cells[-1]))

    executor.execute(nb, then=run_solutions_then_check)  # raises CellExecutionError, with the traceback, on error

    as_shipped = _verdicts(_text(check_cell))
    assert len(as_shipped) >= 2, f"{path.name}: the checker printed {as_shipped}; expected a line per exercise"
    assert all("not yet implemented" in line for line in as_shipped), \
        f"{path.name}: with the exercise stubs the checker should say 'not yet implemented', got {as_shipped}"
    solved = after["verdicts"]
    assert len(solved) == len(as_shipped) and all(line.startswith("✓") for line in solved), \
        f"{path.name}: with the worked solutions the checker said {solved}"


# -- (b) the committed notebook is executed, in order, without errors ---------------------------------------------
@each_notebook
def test_committed_notebook_was_executed_in_order_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), \
        f"{path.name}: execution counts {counts}; re-run `python scripts/execute_notebooks.py {path.name}`"
    errors = [f"{output.ename}: {output.evalue}" for cell in nb.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name}: committed with error outputs {errors}"
    tracebacks = [cell.source.splitlines()[0] for cell in _code_cells(nb)
                  if any(o.output_type == "stream" and o.name == "stderr" and "Traceback" in o.text
                         for o in cell.outputs)]
    assert not tracebacks, f"{path.name}: a traceback was printed to stderr by the cells starting {tracebacks}"
    images = sum("image/png" in output.get("data", {}) for cell in _code_cells(nb) for output in cell.outputs)
    assert images, f"{path.name}: no PNG figure in the outputs; was it committed without being executed?"
    megabytes = path.stat().st_size / 2 ** 20
    assert megabytes < MAX_MEGABYTES, f"{path.name} is {megabytes:.2f} MB; lower the figure dpi or sizes"


# -- (c) each notebook ends with a hidden exercise checker --------------------------------------------------------
@each_notebook
def test_notebook_ends_with_a_hidden_exercise_check(path):
    nb = nbformat.read(path, as_version=4)
    checks = _tagged(nb, "exercise-check")
    assert len(checks) == 1, f"{path.name}: expected one cell tagged 'exercise-check', found {len(checks)}"
    check = checks[0]
    assert check.cell_type == "code" and check is _code_cells(nb)[-1], \
        f"{path.name}: the exercise check must be the last code cell"
    assert check.metadata.get("jupyter", {}).get("source_hidden") is True, \
        f"{path.name}: the exercise check cell should be hidden (metadata jupyter.source_hidden = true)"
    assert "hide-input" in check.metadata.get("tags", []), f"{path.name}: tag the check cell 'hide-input'"
    assert _tagged(nb, "exercise"), f"{path.name}: no code cell tagged 'exercise' (the stubs the learner fills in)"
    assert len(_verdicts(_text(check))) >= 2, f"{path.name}: the committed check cell printed no verdicts"
