"""The house rules for minildm.pipelines, checked on the source: it sits on top (nothing but the command line
imports it), and array math goes through the backend (NumPy only in the host-side images.py)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "minildm"


def imported_modules(path: Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_nothing_but_the_cli_imports_the_pipelines():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "pipelines" or relative.stem in ("cli", "__main__") or relative.parts[0] == "cli":
            continue
        if any("pipelines" in name for name in imported_modules(path)):
            offenders.append(str(relative))
    assert not offenders, f"modules importing minildm.pipelines: {offenders}"


def test_only_the_host_side_image_code_imports_numpy():
    users = sorted(p.name for p in (PACKAGE / "pipelines").glob("*.py") if "numpy" in imported_modules(p))
    assert users == ["images.py"]
