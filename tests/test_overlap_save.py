"""Overlap-save convolution against torch's direct ``conv1d``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ltx_av.ltx_core import overlap_save
from ltx_av.ltx_core.overlap_save import overlap_save_conv1d, window_length


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` with the same values laid out as a contiguous ``[B, T, C]`` seen through a transpose."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


@pytest.mark.parametrize("length", [1, 2, 9, 40, 123])
@pytest.mark.parametrize("time_major", [False, True])
def test_matches_conv1d(length, time_major):
    torch.manual_seed(length)
    x = torch.randn(2, 5, length)
    for kernel, dilation, fft_size in ((1, 1, 8), (3, 2, 8), (7, 1, 16), (7, 5, 32), (11, 3, 16), (11, 1, None)):
        w, b = torch.randn(3, 5, kernel), torch.randn(3)
        expected = F.conv1d(x, w, b, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        out = overlap_save_conv1d(_time_major(x) if time_major else x, w, b, dilation, fft_size)
        assert out.shape == expected.shape
        assert (out - expected).abs().max() <= 1e-5, (kernel, dilation, fft_size)
        if length > 1:  # the result keeps the input's layout
            assert (out.stride(1) == 1) == time_major


def test_without_bias_in_float64_and_in_spectrum_chunks(monkeypatch):
    monkeypatch.setattr(overlap_save, "SPECTRUM_CHUNK_BYTES", 1)  # one bin at a time
    torch.manual_seed(0)
    x, w = torch.randn(1, 6, 301, dtype=torch.float64), torch.randn(4, 6, 11, dtype=torch.float64)
    expected = F.conv1d(x, w, padding=15, dilation=3)
    assert (overlap_save_conv1d(x, w, dilation=3, fft_size=32) - expected).abs().max() <= 1e-12


def test_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="odd kernel shorter than fft_size=16"):
        overlap_save_conv1d(torch.zeros(1, 2, 9), torch.zeros(2, 2, 4), fft_size=16)
    with pytest.raises(ValueError, match="over 3 channels"):
        overlap_save_conv1d(torch.zeros(1, 3, 9), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="shorter than fft_size=8"):
        overlap_save_conv1d(torch.zeros(1, 2, 9), torch.zeros(2, 2, 9), fft_size=8)


def test_window_length_grows_with_the_signal_and_exceeds_the_kernel():
    assert all(window_length(t, k) > k for t in (1, 100, 10**6) for k in (1, 3, 7, 11, 15, 63, 127))
    assert window_length(3000, 11) <= window_length(15000, 11) <= window_length(60000, 11)
