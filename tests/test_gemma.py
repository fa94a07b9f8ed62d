"""Gemma 3 loading and prompt encoding with a tiny random Gemma 3 saved by ``transformers``.

The oracle is ltx-core 1.0.0's own Gemma path: its tokenizer wrapper (1024 tokens, left padding) and its encoder
(``model.model(...)`` of the full multimodal model, all hidden states), followed by its embeddings processor.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
import tiny_gemma
import torch
from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor
from ltx_core.text_encoders.gemma.encoders.base_encoder import GemmaTextEncoder
from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
from safetensors import safe_open
from safetensors.torch import save_file

from ltx_av.ltx_core import CheckpointError, InputError
from ltx_av.ltx_core.gemma import (
    GemmaEncoder,
    Tokens,
    gguf_tokenizer,
    inspect_gemma,
    load_gemma,
    read_gguf_metadata,
    sentencepiece_model_tokenizer,
)
from ltx_av.ltx_core.text_encoder import encode_prompts, load_text_path

import tiny_models

PROMPTS = (
    "a red cat sits on the street at night while the camera pans left over the city with loud music",
    "  dog  ",
    "",
)


@pytest.fixture(scope="module")
def gemma_folder(tmp_path_factory) -> str:
    return tiny_gemma.write_gemma_folder(str(tmp_path_factory.mktemp("gemma") / "tiny-gemma-3"))


@pytest.fixture(scope="module")
def gemma(gemma_folder) -> GemmaEncoder:
    return load_gemma(gemma_folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def reference_encoder(gemma_folder):
    from transformers import Gemma3ForConditionalGeneration

    model = Gemma3ForConditionalGeneration.from_pretrained(gemma_folder, dtype=torch.float32).eval()
    return GemmaTextEncoder(model=model, tokenizer=LTXVGemmaTokenizer(gemma_folder, 1024), dtype=torch.float32)


def _real(states, mask):
    return states[mask.bool()]


def test_only_the_language_model_is_loaded(gemma, gemma_folder):
    from transformers import Gemma3TextModel

    assert isinstance(gemma.model, Gemma3TextModel)
    names = [n for n, _ in gemma.model.named_parameters()]
    assert not any("vision" in n or "multi_modal" in n or "lm_head" in n for n in names)
    assert (gemma.hidden_size, gemma.num_hidden_states) == (tiny_models.GEMMA_HIDDEN, tiny_models.GEMMA_STATES)
    assert gemma.dtype == torch.float32 and gemma.source.layout == "folder"
    assert load_gemma(gemma_folder).dtype == torch.bfloat16  # the default


def test_tokens_match_the_reference_tokenizer(gemma, gemma_folder):
    ref = LTXVGemmaTokenizer(gemma_folder, 1024)
    tokens = gemma.tokenize(list(PROMPTS))
    assert tokens.input_ids.shape == (3, 1024)
    for i, prompt in enumerate(PROMPTS):
        pairs = ref.tokenize_with_weights(prompt)["gemma"]
        assert tokens.input_ids[i].tolist() == [int(t) for t, _ in pairs]
        assert tokens.attention_mask[i].tolist() == [int(w) for _, w in pairs]
    # BOS first, left padding; the empty prompt is BOS alone.
    assert tokens.input_ids[2, -1].item() == gemma.bos_id == 2
    assert tokens.attention_mask[2].sum().item() == 1
    n = int(tokens.attention_mask[1].sum())
    assert tokens.input_ids[1, -n].item() == 2 and not tokens.attention_mask[1, :-n].any()


def test_long_prompt_is_truncated_like_the_reference_and_logged(gemma, gemma_folder, caplog):
    prompt = " ".join(tiny_gemma.WORDS * 30)  # ~2000 words
    with caplog.at_level(logging.WARNING, logger="ltx_av.gemma"):
        tokens = gemma.tokenize([prompt])
    assert "truncated" in caplog.text and "1024" in caplog.text
    assert tokens.attention_mask.all()
    ref = LTXVGemmaTokenizer(gemma_folder, 1024).tokenize_with_weights(prompt)["gemma"]
    assert tokens.input_ids[0].tolist() == [int(t) for t, _ in ref]


def test_hidden_states_match_the_reference_encoder(gemma, reference_encoder):
    ours_full = gemma.encode(list(PROMPTS), trim_padding=False)
    ours = gemma.encode(list(PROMPTS))
    assert ours.states.shape[1] == max(ours.lengths).item() < 1024 == ours.length
    assert ours_full.states.shape == (3, 1024, tiny_models.GEMMA_HIDDEN, tiny_models.GEMMA_STATES)
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):
            hidden, mask = reference_encoder.encode(prompt)
            ref = torch.stack(hidden, dim=-1)
            torch.testing.assert_close(_real(ours_full.states[i : i + 1], mask), _real(ref, mask), atol=1e-5, rtol=0)
            torch.testing.assert_close(
                _real(ours.states[i : i + 1], ours.mask[i : i + 1]), _real(ref, mask), atol=1e-5, rtol=1e-5
            )


def test_prompts_to_contexts_match_the_reference_pipeline(gemma, reference_encoder, tiny_checkpoint, variant):
    processor = EmbeddingsProcessor(
        feature_extractor=tiny_models.load_reference(tiny_checkpoint, "feature_extractor"),
        video_connector=tiny_models.load_reference(tiny_checkpoint, "video_connector"),
        audio_connector=tiny_models.load_reference(tiny_checkpoint, "audio_connector"),
    )
    text_path = load_text_path(tiny_checkpoint, dtype=torch.float32)
    ours = encode_prompts(gemma, text_path, list(PROMPTS))
    errors = []
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):
            hidden, mask = reference_encoder.encode(prompt)
            ref = processor.process_hidden_states(hidden, mask)
            errors.append((ours.video[i : i + 1] - ref.video_encoding).abs().max().item())
            errors.append((ours.audio[i : i + 1] - ref.audio_encoding).abs().max().item())
    assert max(errors) <= 1e-4


def test_progress_is_reported_per_layer_and_can_interrupt(gemma):
    seen = []
    gemma.encode(["a cat"], progress=lambda done, total: seen.append((done, total)))
    layers = tiny_models.GEMMA_STATES - 1
    assert seen == [(i, layers) for i in range(1, layers + 1)]

    class Stop(Exception):
        pass

    def stop(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        gemma.encode(["a cat"], progress=stop)
    assert gemma.encode(["a cat"]).states.isfinite().all()  # hooks were removed


# -- single-file layouts -------------------------------------------------------------------------------------------


def _weights(folder):
    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _language_model(folder, prefix):
    src = "language_model.model."
    return {prefix + k[len(src) :]: v for k, v in _weights(folder).items() if k.startswith(src)}


def _copy_config_and_tokenizer(folder, to):
    """config.json and the tokenizer files ``save_pretrained`` wrote (transformers 5 writes no
    special_tokens_map.json: the special tokens live in tokenizer_config.json)."""
    copied = []
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.isfile(os.path.join(folder, name)):
            shutil.copy(os.path.join(folder, name), os.path.join(to, name))
            copied.append(name)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(copied)


def test_single_file_with_config_and_tokenizer_beside_it(gemma, gemma_folder, tmp_path):
    # ComfyUI's layout: language model under "model.", the vision tower under its own prefix.
    tensors = _language_model(gemma_folder, "model.")
    tensors["vision_model.some.weight"] = torch.zeros(2)
    save_file(tensors, str(tmp_path / "gemma.safetensors"))
    _copy_config_and_tokenizer(gemma_folder, tmp_path)
    loaded = load_gemma(str(tmp_path / "gemma.safetensors"), dtype=torch.float32)
    assert loaded.source.layout == "safetensors"
    tokens = gemma.tokenize(["a cat"])
    torch.testing.assert_close(loaded.hidden_states(tokens).states, gemma.hidden_states(tokens).states)


def test_single_file_with_a_named_tokenizer_folder(gemma, gemma_folder, tmp_path):
    (tmp_path / "models").mkdir()
    save_file(_language_model(gemma_folder, ""), str(tmp_path / "models" / "gemma-lm.safetensors"))
    tokenizer = tmp_path / "gemma-tokenizer"
    tokenizer.mkdir()
    _copy_config_and_tokenizer(gemma_folder, tokenizer)
    path = str(tmp_path / "models" / "gemma-lm.safetensors")
    with pytest.raises(CheckpointError, match="no Gemma tokenizer found") as error:
        inspect_gemma(path)
    message = str(error.value)
    for place in ("models'", os.path.join("models", "tokenizer"), os.path.join("models", "gemma-lm")):
        assert place in message
    loaded = load_gemma(path, tokenizer_dir=str(tokenizer), dtype=torch.float32)
    tokens = gemma.tokenize(["dog"])
    torch.testing.assert_close(loaded.hidden_states(tokens).states, gemma.hidden_states(tokens).states)


def test_float8_weights_are_upcast_with_their_scales(gemma_folder, tmp_path):
    tensors = _language_model(gemma_folder, "model.")
    key = "model.layers.0.mlp.up_proj.weight"
    scale = tensors[key].abs().max() / 200
    tensors[key] = (tensors[key] / scale).to(torch.float8_e4m3fn)
    tensors[key.replace(".weight", ".weight_scale")] = scale.reshape(())
    save_file(tensors, str(tmp_path / "gemma-fp8.safetensors"))
    _copy_config_and_tokenizer(gemma_folder, tmp_path)
    loaded = load_gemma(str(tmp_path / "gemma-fp8.safetensors"), dtype=torch.float32)
    expected = tensors[key].float() * scale
    torch.testing.assert_close(loaded.model.layers[0].mlp.up_proj.weight, expected)


def test_single_file_without_config_must_be_gemma3_12b(gemma_folder, tmp_path):
    save_file(_language_model(gemma_folder, "model."), str(tmp_path / "gemma.safetensors"))
    shutil.copy(os.path.join(gemma_folder, "tokenizer.json"), tmp_path / "tokenizer.json")
    with pytest.raises(CheckpointError, match=r"hidden size 32 and 4 layers but no config.json"):
        inspect_gemma(str(tmp_path / "gemma.safetensors"))


# -- other families ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_type,words",
    [("gemma4", "Gemma 4"), ("gemma3n", "Gemma 3n"), ("gemma2", "earlier Gemma"), ("llama", "'llama'")],
)
def test_other_model_families_are_refused(gemma_folder, tmp_path, model_type, words):
    folder = tmp_path / model_type
    shutil.copytree(gemma_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="LTX-2 and LTX-2.3 need Gemma 3") as error:
        inspect_gemma(str(folder))
    assert words in str(error.value)


def test_a_language_model_without_gemma3_norms_is_refused(gemma_folder, tmp_path):
    tensors = {k: v for k, v in _language_model(gemma_folder, "model.").items() if "q_norm" not in k}
    save_file(tensors, str(tmp_path / "gemma2.safetensors"))
    with pytest.raises(CheckpointError, match="need Gemma 3"):
        inspect_gemma(str(tmp_path / "gemma2.safetensors"))


def _write_gguf(path, arch, tokenizer=None, sizes=(640, 18)):
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_embedding_length(sizes[0])
    writer.add_block_count(sizes[1])
    if tokenizer is not None:
        tokens, scores, types = tokenizer
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_header_is_read_and_other_architectures_are_refused(tmp_path):
    _write_gguf(tmp_path / "g4.gguf", "gemma4")
    with pytest.raises(CheckpointError, match="Gemma 4.*need Gemma 3"):
        inspect_gemma(str(tmp_path / "g4.gguf"))
    _write_gguf(tmp_path / "ll.gguf", "llama")
    with pytest.raises(CheckpointError, match="'llama', not Gemma 3"):
        inspect_gemma(str(tmp_path / "ll.gguf"))
    _write_gguf(tmp_path / "g3.gguf", "gemma3", sizes=(3840, 48))
    with pytest.raises(CheckpointError, match="no Gemma tokenizer found"):  # a GGUF without its vocabulary
        inspect_gemma(str(tmp_path / "g3.gguf"))
    meta = read_gguf_metadata(str(tmp_path / "g3.gguf"), ("gemma3.block_count",))
    assert meta["gemma3.block_count"] == 48 and "general.architecture" in meta["_keys"]


def _spm_bpe(text, vocab, scores):
    """SentencePiece-BPE by its definition: start from characters, repeatedly merge the adjacent pair whose
    concatenation is a piece with the highest score (leftmost on ties)."""
    pieces = list(text.replace(" ", "\u2581"))
    while True:
        best = None
        for i in range(len(pieces) - 1):
            joined = pieces[i] + pieces[i + 1]
            if joined in vocab and (best is None or scores[vocab[joined]] > scores[vocab[best[1]]]):
                best = (i, joined)
        if best is None:
            return [vocab[p] for p in pieces]
        i, joined = best
        pieces[i : i + 2] = [joined]


def _tiny_sentencepiece():
    """(pieces, scores, types) of a small SentencePiece-BPE vocabulary in Gemma's conventions."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    normal = ["\u2581", "a", "b", "c", "t", "s", "at", "\u2581c", "ca", "\u2581cat", "ts", "\u2581cats", "\u2581a"]
    normal_scores = [-100.0, -200.0, -201.0, -202.0, -203.0, -204.0, -10.0, -20.0, -25.0, -30.0, -1.0, -40.0, -15.0]
    tokens = specials + ["\n", "  "] + normal
    scores = [-1000.0] * 6 + normal_scores
    types = [3] * 4 + [4, 4] + [1] * len(normal)
    return tokens, scores, types


def test_gguf_tokenizer_is_sentencepiece_bpe(tmp_path):
    tokens, scores, types = _tiny_sentencepiece()
    _write_gguf(tmp_path / "tok.gguf", "gemma3", tokenizer=(tokens, scores, types))
    source = inspect_gemma(str(tmp_path / "tok.gguf"))
    assert source.tokenizer_dir is None and source.hidden_size == 640 and source.num_hidden_states == 19
    tokenizer = gguf_tokenizer(str(tmp_path / "tok.gguf"))
    vocab = {t: i for i, t in enumerate(tokens)}
    for text in ("a cat", "a cats", "cat", "tsa ca cats", "a cat cats"):
        assert tokenizer(text)["input_ids"] == [2, *_spm_bpe(text, vocab, scores)], text
    assert tokenizer("a cat")["input_ids"] == [2, vocab["a"], vocab["\u2581cat"]]
    assert tokenizer("a\ncat")["input_ids"] == [2, vocab["a"], vocab["\n"], vocab["c"], vocab["at"]]
    assert tokenizer("a  cat")["input_ids"] == [2, vocab["a"], vocab["  "], vocab["c"], vocab["at"]]
    assert tokenizer.decode(tokenizer("a cats")["input_ids"], skip_special_tokens=True) == "a cats"


def test_embedded_sentencepiece_model_equals_the_gguf_tokenizer(tmp_path):
    tokens, scores, types = _tiny_sentencepiece()
    _write_gguf(tmp_path / "tok.gguf", "gemma3", tokenizer=(tokens, scores, types))
    from_gguf = gguf_tokenizer(str(tmp_path / "tok.gguf"))
    from_proto = sentencepiece_model_tokenizer(tiny_gemma.sentencepiece_proto(tokens, scores, types), "x")
    for text in ("a cat", "a  cats\nts", "", "cab"):
        assert from_proto(text)["input_ids"] == from_gguf(text)["input_ids"], text
    with pytest.raises(CheckpointError, match="not Gemma's"):
        sentencepiece_model_tokenizer(
            tiny_gemma.sentencepiece_proto(tokens, scores, types, model_type=1), "unigram.model"
        )


def test_gguf_weights_load_exactly_and_run_like_the_model_they_came_from(tmp_path):
    """A small Gemma 3 written as llama.cpp writes one (its tensor names, RMSNorm scales stored as 1 + weight,
    dimensions reversed, the config as GGUF keys) loads back into the same weights and the same hidden states: our
    dequantising loader plus transformers' reading of the GGUF config, on whichever transformers runs the test."""
    import gguf
    import numpy as np
    from transformers import Gemma3TextConfig, Gemma3TextModel

    tokens, scores, types = _tiny_sentencepiece()
    sizes = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=6, num_attention_heads=2)
    sizes.update(num_key_value_heads=1, head_dim=16, sliding_window=4, max_position_embeddings=2048)
    config = Gemma3TextConfig(vocab_size=len(tokens), rms_norm_eps=1e-6, **sizes)
    assert "full_attention" in config.layer_types and "sliding_attention" in config.layer_types
    torch.manual_seed(0)
    source = Gemma3TextModel(config).eval()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_(0, 0.3)
    weights = {k: v for k, v in source.state_dict().items() if "rotary" not in k}

    writer = gguf.GGUFWriter(str(tmp_path / "tiny.gguf"), "gemma3")
    writer.add_context_length(sizes["max_position_embeddings"])
    writer.add_embedding_length(sizes["hidden_size"])
    writer.add_block_count(sizes["num_hidden_layers"])
    writer.add_feed_forward_length(sizes["intermediate_size"])
    writer.add_head_count(sizes["num_attention_heads"])
    writer.add_head_count_kv(sizes["num_key_value_heads"])
    writer.add_key_length(sizes["head_dim"])
    writer.add_value_length(sizes["head_dim"])
    writer.add_sliding_window(sizes["sliding_window"])
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1e6)  # Gemma 3's global RoPE base (transformers' default too)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(2)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, sizes["num_hidden_layers"])
    for key, value in weights.items():
        stem, suffix = key.rsplit(".", 1)
        data = value.numpy().astype(np.float32) + (1 if key.endswith("norm.weight") else 0)
        writer.add_tensor(f"{names.get_name('model.' + stem)}.{suffix}", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    loaded = load_gemma(str(tmp_path / "tiny.gguf"), dtype=torch.float32)
    assert loaded.source.layout == "gguf" and isinstance(loaded.model, Gemma3TextModel)
    assert loaded.model.config.layer_types == config.layer_types
    state = loaded.model.state_dict()
    for key, value in weights.items():
        torch.testing.assert_close(state[key], value, atol=1e-6, rtol=0, msg=key)  # (x + 1) - 1 in float32
    ids = torch.tensor([[2, 9, 11, 6, 7, 10, 12, 9, 11, 6, 7, 10]])  # longer than the sliding window
    with torch.no_grad():
        expected = source(input_ids=ids, output_hidden_states=True).hidden_states
    got = loaded.hidden_states(Tokens(ids, torch.ones_like(ids)), trim_padding=False).states
    torch.testing.assert_close(got, torch.stack(expected, dim=-1), atol=1e-4, rtol=1e-4)


def test_comfyui_single_file_uses_its_embedded_tokenizer(gemma, gemma_folder, tmp_path):
    tensors = _language_model(gemma_folder, "model.")
    tokens, scores, types = _tiny_sentencepiece()
    proto = tiny_gemma.sentencepiece_proto(tokens, scores, types)
    tensors["spiece_model"] = torch.frombuffer(bytearray(proto), dtype=torch.uint8)
    save_file(tensors, str(tmp_path / "gemma_3_tiny.safetensors"))
    shutil.copy(os.path.join(gemma_folder, "config.json"), tmp_path / "config.json")
    loaded = load_gemma(str(tmp_path / "gemma_3_tiny.safetensors"), dtype=torch.float32)
    assert loaded.source.tokenizer_dir is None
    vocab = {t: i for i, t in enumerate(tokens)}
    assert loaded.token_ids(" a cat ") == [2, vocab["a"], vocab["\u2581cat"]]
    torch.testing.assert_close(
        loaded.hidden_states(loaded.tokenize(["a cat"])).states,
        gemma.hidden_states(loaded.tokenize(["a cat"])).states,
    )


def test_missing_sources_and_pickles_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        inspect_gemma(str(tmp_path / "nothing.safetensors"))
    (tmp_path / "gemma.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="pickle"):
        inspect_gemma(str(tmp_path / "gemma.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        inspect_gemma(str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="has none of tokenizer.json"):
        inspect_gemma(str(tmp_path / "empty"), tokenizer_dir=str(tmp_path))


def test_a_gemma_of_the_wrong_size_is_refused_before_encoding(gemma_folder, tiny_checkpoint, tmp_path):
    folder = tiny_gemma.write_gemma_folder(str(tmp_path / "wide"), hidden=48, layers=2)
    wide = load_gemma(folder, dtype=torch.float32)
    text_path = load_text_path(tiny_checkpoint, dtype=torch.float32)
    with pytest.raises(InputError, match=r"hidden size 48 and 3 hidden states.*expects hidden size 32 and 5"):
        encode_prompts(wide, text_path, ["a cat"])
