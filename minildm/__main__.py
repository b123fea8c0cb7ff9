"""``python -m minildm ...`` runs the command line (see ``minildm/cli/``)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
