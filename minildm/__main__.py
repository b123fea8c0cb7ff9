"""``python -m minildm ...`` runs the command line (see ``minildm/cli.py``)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
