"""Shared fixtures: the tiny official-layout checkpoints of both variants, built once per session."""

from __future__ import annotations

import os
import sys

import pytest

# The repository root must not be importable as a folder of top-level modules: its ltx_core/ would shadow the
# reference (tests import the pack as `ltx_av`, installed with `pip install -e .`).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _ROOT]

# Import the official reference once, the safe way (torchaudio stand-in, no shadowing), before any test module
# runs, so test modules may import `ltx_core.*` (the reference) in any order.
import reference  # noqa: E402, F401

VARIANTS = ("LTX-2", "LTX-2.3")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    """variant -> path of a tiny float32 monolith written with the reference's modules."""
    import tiny_models

    folder = tmp_path_factory.mktemp("tiny_checkpoints")
    paths = {}
    for variant in VARIANTS:
        path = str(folder / f"tiny-{variant.lower()}.safetensors")
        tiny_models.write_monolith(path, variant)
        paths[variant] = path
    return paths


@pytest.fixture(params=VARIANTS)
def variant(request) -> str:
    return request.param


@pytest.fixture
def tiny_checkpoint(tiny_checkpoints, variant) -> str:
    """Path of the tiny monolith of the current ``variant``."""
    return tiny_checkpoints[variant]


@pytest.fixture
def one_thread():
    """Tiny models are all overhead: one thread runs them as fast and does not collapse when the 2 cores are
    shared with other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
