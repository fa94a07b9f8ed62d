"""The pack as ComfyUI and pip see it: import names, relative imports, boundaries, dependencies, CI command."""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import re
import sys

import pytest

import ltx_av
import ltx_av.ltx_core

from reference import REPO_ROOT, ltx_core_ref

PACK_DIRS = ("", "ltx_core", "nodes")


def _pack_files():
    for folder in PACK_DIRS:
        base = os.path.join(REPO_ROOT, folder)
        for name in sorted(os.listdir(base)):
            if name.endswith(".py"):
                yield os.path.join(folder, name), os.path.join(base, name)


def _imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""


def test_pip_package_and_reference_import_side_by_side():
    assert os.path.dirname(ltx_av.__file__) == REPO_ROOT
    assert ltx_av.ltx_core.__file__ == os.path.join(REPO_ROOT, "ltx_core", "__init__.py")
    assert ltx_core_ref.__file__ != ltx_av.ltx_core.__file__  # the official reference, imported as top-level ltx_core
    assert sys.modules["ltx_core"] is ltx_core_ref
    assert isinstance(ltx_av.NODE_CLASS_MAPPINGS, dict)
    assert set(ltx_av.NODE_DISPLAY_NAME_MAPPINGS) == set(ltx_av.NODE_CLASS_MAPPINGS)


def test_only_relative_imports_inside_the_pack():
    own = {"ltx_core", "nodes", "ltx_av"}
    for rel, path in _pack_files():
        for level, module in _imports(path):
            if level == 0:
                assert module.split(".")[0] not in own, f"{rel}: absolute import of {module}"


def test_ltx_core_never_imports_comfyui_or_nodes_and_only_the_host_adapter_touches_comfyui():
    for rel, path in _pack_files():
        for level, module in _imports(path):
            top = module.split(".")[0]
            assert top not in ("comfy", "folder_paths", "server", "comfy_api", "comfy_extras"), (
                f"{rel} imports {module}"
            )
            if rel.startswith("ltx_core"):
                assert not (level >= 2 or top == "nodes"), f"{rel} imports from outside ltx_core: {module}"
        if rel != os.path.join("nodes", "host.py"):
            text = open(path).read()
            assert "comfy." not in text and "folder_paths" not in text, f"{rel} refers to ComfyUI modules"


def _import_as(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO_ROOT, "__init__.py"), submodule_search_locations=[REPO_ROOT]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    return module


def test_pack_imports_under_any_folder_name_as_comfyui_does():
    module = _import_as("custom_nodes_x_ComfyUI-LTX-AV-main")
    assert module.NODE_CLASS_MAPPINGS.keys() == ltx_av.NODE_CLASS_MAPPINGS.keys()


def test_missing_dependency_logs_one_line_and_registers_nothing(monkeypatch, caplog):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "av" else real(n, *a))
    with caplog.at_level(logging.ERROR, logger="ltx_av"):
        module = _import_as("broken_env_pack")
    assert module.NODE_CLASS_MAPPINGS == {} and module.NODE_DISPLAY_NAME_MAPPINGS == {}
    lines = [r.getMessage() for r in caplog.records if r.name == "ltx_av"]
    assert len(lines) == 1
    assert "missing Python package(s) av" in lines[0] and "pip install -r" in lines[0]


def test_node_names_do_not_collide_with_core_and_every_node_is_described():
    for name, cls in ltx_av.NODE_CLASS_MAPPINGS.items():
        assert name.startswith("LTX") and not name.startswith(("LTXV", "LTXAV")) or name.startswith("LTXVAE"), name
        assert cls.DESCRIPTION and cls.CATEGORY.startswith("LTX-AV")
        for group in cls.INPUT_TYPES().values():
            for input_name, spec in group.items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_requirements_never_pin_torch():
    lines = [
        ln.strip() for ln in open(os.path.join(REPO_ROOT, "requirements.txt")) if ln.strip() and not ln.startswith("#")
    ]
    assert lines
    assert not any(re.match(r"(torch|torchvision|torchaudio)\b", ln) for ln in lines)
    pyproject = open(os.path.join(REPO_ROOT, "pyproject.toml")).read()
    deps = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "torch" not in deps
    assert 'name = "ltx-av"' in pyproject and "[tool.comfy]" in pyproject
    for key in ("PublisherId", "DisplayName", "Icon"):
        assert f"{key} =" in pyproject


def test_ci_runs_exactly_the_readme_test_command():
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    section = readme.split("## Run the tests", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()
    ci = [ln for ln in open(os.path.join(REPO_ROOT, ".ci", "run")).read().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1].strip() == command
    assert "torch==2.13.0" in command and "ltx-core==1.0.0" in command and "--no-deps" in command
    # test_transformers5.py runs the text tests on the transformers 5 installed here (sys.prefix is .venv)
    assert '--target .venv/transformers5 "transformers>=5,<6"' in command


def _not_package_data(package: str, root: str, folders: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Files under ``folders`` (relative to ``root``, the package's folder) and those of them that match none of
    pyproject's package-data patterns of ``package``."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"][package]
    files = [
        os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
        for sub in folders
        for folder, _, names in os.walk(os.path.join(root, sub))
        for name in names
    ]
    return files, [p for p in files if not any(fnmatch.fnmatch(p, pattern) for pattern in patterns)]


def test_every_workflow_and_template_picture_is_package_data():
    """A pip install carries what ComfyUI's template browser and users load: each file under workflows/ui,
    workflows/api and example_workflows matches a package-data pattern."""
    shipped, missing = _not_package_data("ltx_av", REPO_ROOT, ("workflows/ui", "workflows/api", "example_workflows"))
    assert any(p.endswith(".jpg") for p in shipped) and len(shipped) >= 3 * 14
    assert missing == []


def test_the_demo_model_is_package_data():
    """A pip install carries the main job's default: each file under ltx_core/demo_model matches a package-data
    pattern of ltx_av.ltx_core (a trimmed copy without the folder passes: the main job then runs the random model)."""
    _, missing = _not_package_data("ltx_av.ltx_core", os.path.join(REPO_ROOT, "ltx_core"), ("demo_model",))
    assert missing == []
