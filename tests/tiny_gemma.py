"""Tiny random Gemma 3 models saved with ``transformers``, sized like the tiny checkpoints' text path expects.

The model is a full ``Gemma3ForConditionalGeneration`` (a small vision tower included, as in the real 12B
release) with hidden width :data:`tiny_models.GEMMA_HIDDEN` and ``GEMMA_STATES - 1`` layers, mixing sliding and
global attention with a sliding window shorter than the test prompts. Its tokenizer is a small word-level one
with Gemma's special tokens (``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2) that puts BOS first, as Gemma's does.
"""

from __future__ import annotations

import os
import struct

import torch

from tiny_models import GEMMA_HIDDEN, GEMMA_STATES

WORDS = (
    "a cat dog bird sits runs flies on the in over under red blue green small big slow fast camera pans left right "
    "video of with and city street night day rain sun light dark man woman child walks talks sings music sound loud "
    "quiet ocean waves beach forest tree wind close up wide shot"
).split()
SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")
VOCAB_SIZE = 300
SLIDING_WINDOW = 4


def tokenizer_object():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return tok


def save_tokenizer(folder: str) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object(), bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)


def text_config(hidden: int = GEMMA_HIDDEN, layers: int = GEMMA_STATES - 1) -> dict:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "intermediate_size": 2 * hidden,
        "vocab_size": VOCAB_SIZE,
        "sliding_window": SLIDING_WINDOW,
        "layer_types": ["full_attention" if i % 2 else "sliding_attention" for i in range(layers)],
        "max_position_embeddings": 2048,
        "rope_theta": 1e6,
        "rope_local_base_freq": 1e4,
        "query_pre_attn_scalar": 16,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 1,
    }


def build_model(seed: int = 0, **sizes):
    """A random ``Gemma3ForConditionalGeneration`` (float32); norms are randomised too so every weight matters."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    }
    config = Gemma3Config(text_config=text_config(**sizes), vision_config=vision, mm_tokens_per_image=4)
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def write_gemma_folder(folder: str, seed: int = 0, **sizes) -> str:
    """Save a tiny multimodal Gemma 3 (config, weights, tokenizer) as a Hugging Face folder; returns it."""
    os.makedirs(folder, exist_ok=True)
    build_model(seed, **sizes).save_pretrained(folder)
    save_tokenizer(folder)
    return folder


def sentencepiece_proto(tokens, scores, types, model_type=2) -> bytes:
    """A serialised SentencePiece ModelProto (pieces + trainer spec), as ComfyUI embeds it in Gemma files."""

    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    parts = []
    for token, score, kind in zip(tokens, scores, types, strict=True):
        if kind == 4 and set(token) == {" "}:
            token = "\u2581" * len(token)  # SentencePiece spells space runs with the marker
        piece = field(1, token.encode()) + varint(2 << 3 | 5) + struct.pack("<f", score) + varint(3 << 3) + varint(kind)
        parts.append(field(1, piece))
    parts.append(field(2, varint(3 << 3) + varint(model_type)))
    return b"".join(parts)
