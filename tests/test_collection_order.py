"""Paths on pytest's command line in any order keep each folder's conftest fixtures (tests/collection.py).

A small suite of the same shape as ours (a package, a file directly in it, a subpackage with its own
conftest), run by a real pytest in a fresh process with the files interleaved across the two folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = {
    "pytest.ini": "[pytest]\n",
    "suite/__init__.py": "",
    "suite/conftest.py": "from tests.collection import pytest_collect_directory  # noqa: F401\n",
    "suite/test_top.py": "def test_top():\n    pass\n",
    "suite/pkg/__init__.py": "",
    "suite/pkg/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef widget():\n    return 42\n",
    "suite/pkg/test_a.py": "def test_a(widget):\n    assert widget == 42\n",
    "suite/pkg/test_b.py": "def test_b(widget):\n    assert widget == 42\n",
}


def run_pytest(where: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths], cwd=where,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)


def test_a_subfolders_fixtures_reach_its_files_given_after_a_file_of_its_parent(tmp_path: Path):
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    done = run_pytest(tmp_path, "suite/pkg/test_a.py", "suite/test_top.py", "suite/pkg/test_b.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
