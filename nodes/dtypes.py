"""What a loader's ``dtype`` choice means on the device the model will compute on."""

from __future__ import annotations

import torch

from ..ltx_core.errors import InputError

NAMED_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
VAE_DTYPES = ("auto", "fp32", "bf16", "fp16")


def named_dtype(choice: str, allowed: tuple[str, ...]) -> torch.dtype | None:
    """The dtype ``choice`` names, or None for a choice whose dtype depends on the device ("auto" and the like)."""
    if choice not in allowed:
        raise InputError(f"dtype is {choice!r}; expected one of {', '.join(allowed)}")
    return NAMED_DTYPES.get(choice)


def vae_dtype(choice: str, device: torch.device) -> torch.dtype:
    """A VAE's dtype; "auto" is bf16 on a CUDA card that has it and float32 everywhere else.

    Never float16 unless asked for: the VAEs' activations overflow its range, which shows as black frames or
    silence rather than an error.
    """
    named = named_dtype(choice, VAE_DTYPES)
    if named is not None:
        return named
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
