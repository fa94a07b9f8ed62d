"""The loaders' ``dtype`` choices, resolved per device (CUDA cases simulated: only the device type is read)."""

from __future__ import annotations

import pytest
import torch

from ltx_av.ltx_core.errors import InputError
from ltx_av.nodes.dtypes import VAE_DTYPES, vae_dtype
from ltx_av.nodes.model import DTYPES, compute_dtype_for

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


@pytest.mark.parametrize("bf16", [True, False])
def test_auto_never_picks_fp16_for_a_vae_but_may_for_the_transformer(monkeypatch, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert vae_dtype("auto", CUDA) == (torch.bfloat16 if bf16 else torch.float32)
    assert compute_dtype_for("auto", CUDA) == (torch.bfloat16 if bf16 else torch.float16)
    assert compute_dtype_for("float8-storage", CUDA) == compute_dtype_for("auto", CUDA)
    assert vae_dtype("auto", CPU) == compute_dtype_for("auto", CPU) == torch.float32
    assert vae_dtype("auto", MPS) == torch.float32 and compute_dtype_for("auto", MPS) == torch.bfloat16


def test_named_choices_are_taken_as_given_and_others_refused():
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        assert name in VAE_DTYPES and name in DTYPES
        assert vae_dtype(name, CUDA) == compute_dtype_for(name, CPU) == dtype
    with pytest.raises(InputError, match=r"dtype is 'float8-storage'; expected one of auto, fp32, bf16, fp16"):
        vae_dtype("float8-storage", CPU)
    with pytest.raises(InputError, match=r"dtype is 'fp64'; expected one of auto, bf16, fp16, fp32, float8-storage"):
        compute_dtype_for("fp64", CPU)
