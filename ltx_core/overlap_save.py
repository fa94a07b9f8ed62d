"""Wide, long convolutions through the frequency domain, window by window (overlap-save).

A "same"-padded ``k``-tap convolution mixing ``C`` channels costs ``k * C^2`` multiply-adds per output sample when
run directly. Cut the padded signal into windows of ``N`` samples that advance by ``L = N - k + 1``: the ``N``-point
DFT of a window turns the correlation with the kernel into one ``C x C`` complex matrix product per frequency bin,
and the first ``L`` samples of the inverse DFT are exactly the window's outputs (the other ``k - 1`` have wrapped
around). Per output sample that is ``4 (N / 2 + 1) / L * C^2`` real multiply-adds, about ``2.4 C^2`` for ``k = 11``
and ``N = 64``, against ``11 C^2``. The DFTs and the kernel spectra (recomputed on every call, so no second copy of
the weights is kept) grow with ``C`` rather than ``C^2``: the trade pays only for wide layers with long kernels.

Everything runs time-major (``[T, C]`` rows), where the DFTs (as products with small cos/sin tables: at ``N <= 128``
cheaper than an FFT over strided data), the per-bin channel products and the inverse DFT are all strided matrix
products with no transposing copies in between. The result equals the direct convolution up
to float rounding (about 1e-6 relative in float32).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# Window lengths tried (see window_length).
FFT_SIZES = (16, 32, 64, 128)
# Writing one float of a kernel spectrum (memory-bound) takes about as long as this many FLOPs of the per-bin
# products (compute-bound); measured with MKL on AVX-512 CPUs.
SPECTRUM_FLOPS_PER_FLOAT = 130
# Kernel spectra are made a few bins at a time so that each piece stays around this size (the whole spectrum of a
# 512-channel kernel would be 69 MB, a fresh page-faulting buffer on every call).
SPECTRUM_CHUNK_BYTES = 8 << 20


def window_length(length: int, taps: int) -> int:
    """The DFT size from :data:`FFT_SIZES` with the fewest estimated operations per ``C_in x C_out`` weight.

    Longer windows waste fewer samples on the kernel's overlap but have more bins, each with a kernel spectrum to
    make: the per-bin products cost ``8 * ceil(T / L)`` FLOPs and the spectrum about ``2 * 130`` per bin.
    """
    sizes = [n for n in FFT_SIZES if n > taps] or [1 << (2 * taps - 1).bit_length()]
    return min(sizes, key=lambda n: (n // 2 + 1) * (8 * -(-length // (n - taps + 1)) + 2 * SPECTRUM_FLOPS_PER_FLOAT))


@functools.lru_cache(maxsize=16)
def _dft_tables(fft_size: int, taps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 tables for ``bins = N / 2 + 1`` frequencies ``f`` (rows ordered bin-major, real part first):

    * ``forward [2 * bins, N]``: ``cos``, ``-sin`` of ``2 pi f n / N``: the signal's DFT, ``c + i e``;
    * ``kernel [2 * bins, taps]``: ``cos``, ``+sin``: ``a + i b = sum_j w[j] e^{+2 pi i f j / N}``, the conjugate
      kernel DFT, so that the product ``(c + i e)(a + i b)`` is a correlation, as ``conv1d`` computes;
    * ``inverse [2, bins, L]``: real-to-real inverse weights for the ``L = N - taps + 1`` kept samples,
      ``y[t] = sum_f Re[f] inverse[0, f, t] + Im[f] inverse[1, f, t]``.
    """
    bins, span = fft_size // 2 + 1, fft_size - taps + 1
    f = torch.arange(bins, dtype=torch.float64)[:, None]
    step = 2 * math.pi / fft_size
    forward = torch.stack([(step * f * torch.arange(fft_size)).cos(), -(step * f * torch.arange(fft_size)).sin()], 1)
    kernel = torch.stack([(step * f * torch.arange(taps)).cos(), (step * f * torch.arange(taps)).sin()], 1)
    # the bins strictly between 0 and N/2 stand for themselves and their mirror image
    weight = torch.full((bins, 1), 2.0 / fft_size, dtype=torch.float64)
    weight[0] = weight[-1] = 1.0 / fft_size
    angle = step * f * torch.arange(span)
    inverse = torch.stack([weight * angle.cos(), -weight * angle.sin()])
    return forward.reshape(2 * bins, fft_size), kernel.reshape(2 * bins, taps), inverse


def overlap_save_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    dilation: int = 1,
    fft_size: int | None = None,
) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=dilation * (k - 1) // 2, dilation=dilation)`` for an odd ``k``.

    ``x`` is ``[B, C_in, T]`` in either memory layout: channels-first, or time-major (the transpose of a contiguous
    ``[B, T, C_in]``); the result ``[B, C_out, T]`` comes back in the same layout. A dilation is folded into
    ``dilation`` interleaved phases, each an undilated convolution of its own samples. ``fft_size``: the DFT window,
    longer than the kernel (default: :func:`window_length`).
    """
    b, c_in, t = x.shape
    c_out, c_in_w, k = weight.shape
    fft_size = fft_size or window_length(t, k)
    if c_in_w != c_in or k % 2 == 0 or k >= fft_size:
        raise ValueError(
            f"overlap_save_conv1d: needs an odd kernel shorter than fft_size={fft_size} over {c_in} channels, "
            f"got weight {tuple(weight.shape)}"
        )
    time_major = t > 1 and x.stride(1) == 1
    d, span, bins = dilation, fft_size - k + 1, fft_size // 2 + 1
    windows = math.ceil(math.ceil(t / d) / span)  # per phase
    rows = windows * span + k - 1  # samples per phase that the windows read
    pad = d * (k - 1) // 2
    # [B, rows * d, C_in]; contiguous (a padding of nothing may hand back the input view itself)
    padded = F.pad(x.transpose(1, 2), (0, 0, pad, rows * d - t - pad)).contiguous()
    forward, kernel, inverse = (table.to(weight) for table in _dft_tables(fft_size, k))
    kernels = weight.permute(2, 0, 1).reshape(k, c_out * c_in)  # one copy, so each chunk streams it in order
    n = b * d * windows  # windows of all batch items and phases
    per_bin = weight.element_size() * 2 * c_out * (c_in + 2 * n)  # kernel spectrum and the two products
    step = max(1, SPECTRUM_CHUNK_BYTES // per_bin)

    # spectra of every window: [(item, phase, window), (bin, re/im), C_in]
    spectra = x.new_empty(b, d, windows, 2 * bins, c_in)
    for i in range(b):
        for p in range(d):
            # window w of phase p: padded rows (w * span + j) * d + p, j < fft_size
            win = padded[i, p:].as_strided((windows, fft_size, c_in), (span * d * c_in, d * c_in, 1))
            torch.matmul(forward, win, out=spectra[i, p])
    del padded, win
    spectra = spectra.view(n, 2 * bins, c_in)
    acc = x.new_zeros(n, span, c_out)  # [(item, phase, window), sample, C_out]
    # each chunk of kernel spectra is made once and serves every batch item
    for f0 in range(0, bins, step):
        f1 = min(bins, f0 + step)
        # kernel spectra of bins f0..f1 as [bins, C_in, (Re | Im) x C_out]
        kern = (kernel[2 * f0 : 2 * f1] @ kernels).view(f1 - f0, 2 * c_out, c_in).mT
        re = torch.bmm(spectra[:, 2 * f0 : 2 * f1 : 2].transpose(0, 1), kern)  # [c a | c b]
        im = torch.bmm(spectra[:, 2 * f0 + 1 : 2 * f1 : 2].transpose(0, 1), kern)  # [e a | e b]
        del kern
        torch.sub(re[..., :c_out], im[..., c_out:], out=re[..., :c_out])  # real part: c a - e b
        torch.add(re[..., c_out:], im[..., :c_out], out=re[..., c_out:])  # imaginary part: c b + e a
        del im
        for part in range(2):
            back = inverse[part, f0:f1].mT.expand(n, -1, -1)  # [n, span, bins]
            acc.baddbmm_(back, re[..., part * c_out : (part + 1) * c_out].transpose(0, 1))
        del re
    del spectra
    if d == 1:  # already time-major
        y = acc.view(b, windows * span, c_out)
    else:  # interleave the phases
        y = x.new_empty(b, windows, span, d, c_out)
        y.copy_(acc.view(b, d, windows, span, c_out).permute(0, 2, 3, 1, 4))
        y = y.view(b, -1, c_out)
        del acc
    if bias is not None:
        y.add_(bias)
    y = y[:, :t].transpose(1, 2)
    return y if time_major else y.contiguous()
