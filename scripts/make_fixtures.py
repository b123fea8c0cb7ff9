"""Regenerate the golden fixtures in tests/fixtures/ from the reference libraries (PyTorch, diffusers, transformers).

    pip install torch==2.13.0 diffusers transformers
    python scripts/make_fixtures.py            # every area
    python scripts/make_fixtures.py schedulers # one area

Each area is a module in scripts/fixtures/ with a ``make(outdir: Path)`` function that writes small ``.npz`` files.
The tests only read those files (``np.load(..., allow_pickle=False)``), so they never need torch.
"""
import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "tests" / "fixtures"


def main(argv):
    sys.path.insert(0, str(HERE))
    import fixtures

    areas = argv or sorted(m.name for m in pkgutil.iter_modules(fixtures.__path__) if not m.name.startswith("_"))
    OUT.mkdir(parents=True, exist_ok=True)
    for area in areas:
        print(f"[make_fixtures] {area}")
        importlib.import_module(f"fixtures.{area}").make(OUT)


if __name__ == "__main__":
    main(sys.argv[1:])
