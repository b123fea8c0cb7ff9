"""pytest configuration. Shared helpers live in tests/helpers.py (``from helpers import load_fixture, ...``)."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so test modules in subfolders can `import helpers`

from minildm import backend  # noqa: E402


@pytest.fixture
def xp():
    return backend.xp()


def pytest_report_header(config):
    return f"minildm backend: {backend.name()} (MINILDM_BACKEND={os.environ.get('MINILDM_BACKEND', '')!r})"
