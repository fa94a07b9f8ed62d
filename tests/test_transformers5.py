"""Our Gemma path on transformers 5, the major version a plain ``pip install`` (and ComfyUI) brings.

The test venv keeps transformers 4.x (the test extra pins ``<5``), so the rest of the suite covers 4.x. The README's
test command also installs transformers 5 with its own tokenizers and huggingface-hub into ``.venv/transformers5``
(``pip install --target``); this test runs the text tests (tiny Gemma, the real Gemma 3 270M, the text nodes) again
in a subprocess with that folder first on ``sys.path``, so the same code is checked on both majors.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from reference import REPO_ROOT

TARGET = os.environ.get("LTX_AV_TRANSFORMERS5") or os.path.join(sys.prefix, "transformers5")
TEXT_TESTS = ("test_gemma.py", "test_gemma_real.py", "test_nodes_text.py")
# ltx-core's whole text pipeline on tiny checkpoints: slow and no Gemma code of ours beyond what the other
# reference comparisons of test_gemma.py already check on transformers 5 (tokens and hidden states).
DESELECTED = "not test_prompts_to_contexts_match_the_reference_pipeline"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TARGET, os.environ.get("PYTHONPATH")) if p)
    return env


def _pytest_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "pytest")
    return [script] if os.path.isfile(script) else [sys.executable, "-m", "pytest"]


def test_text_tests_pass_on_transformers_5(tmp_path):
    if not os.path.isdir(os.path.join(TARGET, "transformers")):
        message = (
            f"transformers 5 is not installed in {TARGET}; the README's test command installs it with "
            f"`pip install --target {TARGET} 'transformers>=5,<6'`"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    probe = "import transformers as t, tokenizers, huggingface_hub; print(t.__version__, t.__file__)"
    versions = subprocess.run(
        [sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert versions[0].startswith("5.") and versions[1].startswith(TARGET), versions
    import transformers

    assert transformers.__version__.startswith("4.")  # this run: the other major

    tests = [os.path.join("tests", name) for name in TEXT_TESTS]
    result = subprocess.run(
        [*_pytest_command(), "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), "-k", DESELECTED]
        + tests,
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(r"=*\s*\d+ passed, \d+ deselected in .*", summary), output[-6000:]  # nothing skipped
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 30, summary  # 36 when written
