"""The README's test command works whatever the clone folder is called (``git clone`` makes ``ltx-av``).

The repository root is the pack (it has ``__init__.py``) and pytest's rootdir, so pytest imports that file before
the first test; in a folder whose name is not a Python identifier it imports it as a top-level module. This runs
a few tests of a copy of the tree in such a folder with the same interpreter, as the README's ``pytest`` would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from reference import REPO_ROOT

# Tests that run in the copy: cheap ones that only need the copy's own files (README, .ci/run, requirements). Any
# test would do: pytest imports the root __init__.py when it sets up the first one.
PACKAGING = os.path.join("tests", "test_packaging.py")
SELECTED = "test_requirements_never_pin_torch or test_ci_runs_exactly_the_readme_test_command"


def _tree_files() -> list[str]:
    """Files a clone of the working tree would hold: tracked or new, not ignored (no .venv, no caches)."""
    if shutil.which("git") is None or not os.path.exists(os.path.join(REPO_ROOT, ".git")):
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(REPO_ROOT, f))]


def _pytest_command() -> list[str]:
    # The README runs the venv's `pytest` script (no current folder on sys.path, unlike `python -m pytest`).
    script = os.path.join(os.path.dirname(sys.executable), "pytest")
    return [script] if os.path.isfile(script) else [sys.executable, "-m", "pytest"]


def test_readme_test_command_runs_in_a_clone_named_ltx_av(tmp_path):
    clone = tmp_path / "ltx-av"
    for rel in _tree_files():
        os.makedirs(clone / os.path.dirname(rel), exist_ok=True)
        shutil.copy2(os.path.join(REPO_ROOT, rel), clone / rel)
    assert (clone / "__init__.py").is_file() and (clone / "tests" / "conftest.py").is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    options = ["-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), "-k", SELECTED]
    result = subprocess.run(
        [*_pytest_command(), *options, PACKAGING],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "2 passed" in output and "error" not in output.lower(), output[-4000:]


def test_root_init_imported_as_a_plain_module_registers_nothing_and_does_not_fail():
    """What pytest does in such a folder: its path finder loads the root ``__init__.py`` as the top-level module
    ``__init__`` (not a package: ``__package__`` is empty)."""
    spec = importlib.util.spec_from_file_location(
        "__init__", os.path.join(REPO_ROOT, "__init__.py"), submodule_search_locations=None
    )
    plain = importlib.util.module_from_spec(spec)
    assert plain.__package__ == ""
    spec.loader.exec_module(plain)
    assert plain.NODE_CLASS_MAPPINGS == {} and plain.NODE_DISPLAY_NAME_MAPPINGS == {}
