"""LTX-2.5's text path and duration head against ltx-core / ltx-pipelines 1.2.0, through stored fixtures.

1.2.0 is not on PyPI; ``tests/fixtures/ltx25/make_text_fixtures.py`` ran it (with transformers 5.14's Gemma 4) on
tiny files in the official 2.5 layout and stored its outputs. Here our own code loads those files: the Gemma 4
text stack (no transformers), the projection bundled with it, the connectors of the transformer file, the
duration head, and the checks that refuse a text encoder the transformer was not trained with.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ltx_av.ltx_core.duration_head import (
    DurationHead,
    DurationHeadConfig,
    load_duration_head,
    predict_duration,
    seconds_to_num_frames,
)
from ltx_av.ltx_core.errors import CheckpointError, ConfigError, InputError
from ltx_av.ltx_core.gemma4 import Gemma4TextConfig, Gemma4TextModel
from ltx_av.ltx_core.gemma4_encoder import (
    check_encoder_for_checkpoint,
    check_gemma_version,
    inspect_gemma4,
    load_gemma4,
)
from ltx_av.ltx_core.text_encoder import encode_prompts, load_ltx25_text_path

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "ltx25")
GEMMA = os.path.join(FIXTURES, "text_gemma4.safetensors")
TRANSFORMER = os.path.join(FIXTURES, "text_transformer.safetensors")
HEAD = os.path.join(FIXTURES, "text_duration_head.safetensors")
REFERENCE = os.path.join(FIXTURES, "text_reference.safetensors")
TOLERANCE = 1e-4  # max abs error relative to the reference's largest value


def _relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.float() - theirs.float()).abs().max() / theirs.float().abs().max())


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(REFERENCE, "pt") as f:
        cases = json.loads(f.metadata()["cases"])
    return load_file(REFERENCE), cases


@pytest.fixture(scope="module")
def gemma():
    return load_gemma4(GEMMA, dtype=torch.float32)


@pytest.fixture(scope="module")
def text_path(gemma):
    return load_ltx25_text_path(TRANSFORMER, gemma, dtype=torch.float32)


def _copy(tmp_path, name: str, source: str = GEMMA, *, metadata=None, drop: str | None = None, gemma=None) -> str:
    """A copy of a fixture file with its metadata replaced or Gemma config edited, or tensors dropped."""
    with safe_open(source, "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys() if drop is None or not k.startswith(drop)}
    if gemma is not None:
        meta["gemma_config"] = json.dumps(gemma(json.loads(meta["gemma_config"])))
    path = str(tmp_path / name)
    save_file(tensors, path, metadata=metadata if metadata is not None else meta)
    return path


# ---------------------------------------------------------------------------------------------------------------
# The text encoder file


def test_the_official_layout_is_read_from_the_headers_and_our_keys_equal_the_files():
    source = inspect_gemma4(GEMMA)
    assert (source.gemma_version, source.model_type, source.prefix) == ("gemma4-12b-ltx-v1", "gemma4_unified", "model.")
    cfg = source.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_hidden_states) == (24, 6, 7)
    assert cfg.layer_types.count("full_attention") == 2 and cfg.attention_k_eq_v
    assert source.projection_file == GEMMA and source.tokenizer_config["bos_token"] == "<bos>"
    with torch.device("meta"):
        model = Gemma4TextModel(cfg)
    with safe_open(GEMMA, "pt") as f:
        lm = {
            k[len("model.") :] for k in f.keys() if k.startswith(("model.embed_tokens", "model.layers", "model.norm"))
        }
        others = {k.split(".")[0] for k in f.keys() if not k.startswith("model.")}
    assert set(model.state_dict()) == lm
    # Global layers take their values from the key projection: no v_proj there.
    assert model.layers[2].self_attn.v_proj is None and model.layers[0].self_attn.v_proj is not None
    assert others == {
        "text_embedding_projection", "vision_model", "multi_modal_projector", "audio_projector", "tokenizer_json",
        *{k for k in others if k.startswith("hf_asset__")},
    }  # fmt: skip


def test_token_ids_match_the_reference_tokenizer(gemma, reference):
    ref, cases = reference
    for i, prompt in enumerate(cases["prompts"]):
        assert gemma.token_ids(prompt) == ref[f"prompt{i}.token_ids"].tolist(), prompt
    # Gemma 4's tokenizer adds no BOS: it is put first, once, also when the prompt spells it.
    assert gemma.token_ids(cases["prompts"][2]).count(gemma.tokenizer.bos_id) == 1
    assert gemma.token_ids("") == [gemma.tokenizer.bos_id]


def test_a_long_prompt_is_cut_to_1024_tokens_bos_first(gemma, caplog):
    words = ("a cat sits on the street " * 250).split()
    with caplog.at_level(logging.WARNING, logger="ltx_av.gemma4"):
        ids = gemma.token_ids(" ".join(words))
    vocab = gemma.tokenizer.backend.get_vocab()
    assert ids == [gemma.tokenizer.bos_id] + [vocab[w] for w in words[:1023]]
    assert "longer than 1024 tokens" in caplog.text


def test_hidden_states_match_transformers_gemma4(gemma, reference):
    ref, cases = reference
    for i, prompt in enumerate(cases["prompts"]):
        ours = gemma.encode([prompt])
        theirs = ref[f"prompt{i}.hidden_states"]
        assert ours.states.shape == theirs.shape and ours.length == 1024 and bool(ours.mask.all())
        assert _relative(ours.states, theirs) < TOLERANCE


def test_running_all_1024_positions_gives_the_real_tokens_the_same_states(gemma):
    prompts = ["a cat", "wide shot of waves on a beach at night"]
    trimmed = gemma.encode(prompts)
    full = gemma.encode(prompts, trim_padding=False)
    s = trimmed.states.shape[1]
    assert full.states.shape[1] == 1024
    for i in range(2):
        real = trimmed.mask[i]
        torch.testing.assert_close(full.states[i, -s:][real], trimmed.states[i][real], atol=1e-5, rtol=1e-5)


def test_progress_is_reported_per_layer(gemma):
    seen = []
    gemma.encode(["a cat"], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]


# ---------------------------------------------------------------------------------------------------------------
# The text path: projection from the text encoder file, connectors from the transformer file


def test_text_contexts_match_the_reference_pipeline_for_a_batch(gemma, text_path, reference):
    ref, cases = reference
    contexts = encode_prompts(gemma, text_path, cases["prompts"])  # one batch of prompts of different lengths
    for i in range(len(cases["prompts"])):
        for stream in ("video", "audio"):
            theirs = ref[f"prompt{i}.{stream}"]
            ours = getattr(contexts, stream)[i : i + 1]
            assert ours.shape == theirs.shape
            assert _relative(ours, theirs) < TOLERANCE, (i, stream)


def test_text_path_config_comes_from_the_transformer_and_the_gemma_config(text_path):
    cfg = text_path.config
    assert cfg.version == 2 and (cfg.video_dim, cfg.audio_dim) == (16, 8)
    assert (cfg.gemma_hidden_size, cfg.gemma_num_hidden_states) == (24, 7)
    assert cfg.video_connector.apply_gated_attention and cfg.video_connector.rope_float64


def test_bfloat16_files_run_in_bfloat16(tmp_path, reference):
    ref, cases = reference
    low = load_gemma4(GEMMA, dtype=torch.bfloat16)
    assert low.dtype == torch.bfloat16
    path = load_ltx25_text_path(TRANSFORMER, low, dtype=torch.bfloat16)
    contexts = encode_prompts(low, path, cases["prompts"][:1])
    assert contexts.video.dtype == torch.bfloat16
    assert _relative(contexts.video, ref["prompt0.video"]) < 0.1


def test_a_gemma_folder_beside_a_checkpoint_holding_the_projection(tmp_path, gemma, reference):
    """The other layout 1.2.0 reads: a Hugging Face folder of the fine-tune (keys ``model.language_model.*``) and
    one LTX file with the connectors and the projection."""
    ref, cases = reference
    folder = tmp_path / "gemma4-12b-ltx-v1"
    folder.mkdir()
    with safe_open(GEMMA, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    (folder / "config.json").write_text(meta["gemma_config"])
    (folder / "tokenizer.json").write_bytes(bytes(tensors.pop("tokenizer_json").tolist()))
    (folder / "tokenizer_config.json").write_bytes(bytes(tensors["hf_asset__tokenizer_config.json"].tolist()))
    weights = {"model.language_model." + k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    save_file(weights, str(folder / "model.safetensors"))
    projection = {k: v for k, v in tensors.items() if k.startswith("text_embedding_projection.")}
    with safe_open(TRANSFORMER, "pt") as f:
        single = {**{k: f.get_tensor(k) for k in f.keys()}, **projection}
        save_file(single, str(tmp_path / "ltx-2.5-single.safetensors"), metadata=f.metadata())

    from_folder = load_gemma4(str(folder), dtype=torch.float32)
    assert from_folder.source.prefix == "model.language_model." and from_folder.source.projection_file is None
    path = load_ltx25_text_path(str(tmp_path / "ltx-2.5-single.safetensors"), from_folder, dtype=torch.float32)
    contexts = encode_prompts(from_folder, path, cases["prompts"][:2])
    for i in range(2):
        assert _relative(contexts.video[i : i + 1], ref[f"prompt{i}.video"]) < TOLERANCE
        assert _relative(contexts.audio[i : i + 1], ref[f"prompt{i}.audio"]) < TOLERANCE


# ---------------------------------------------------------------------------------------------------------------
# Which text encoder a transformer accepts


def test_the_gemma_check_refuses_exactly_what_the_reference_refuses(reference):
    _, cases = reference
    kinds = {
        "ltx": ("gemma4_unified", "gemma4-12b-ltx-v1"),
        "other-version": ("gemma4_unified", "gemma4-12b-ltx-v2"),
        "stock-gemma4": ("gemma4_unified", None),
        "gemma3": ("gemma3", None),
    }
    for metadata, kind, refused in cases["version_cases"]:
        model_type, version = kinds[kind]

        def check(metadata=metadata, model_type=model_type, version=version):
            check_gemma_version(
                metadata, gemma_model_type=model_type, gemma_version=version, checkpoint_name="t", gemma_name="g"
            )

        if refused:
            with pytest.raises(CheckpointError):
                check()
        else:
            check()


def test_a_stock_gemma4_is_refused(tmp_path):
    stock = _copy(
        tmp_path, "gemma-4-12b.safetensors", gemma=lambda c: {k: v for k, v in c.items() if k != "gemma_version"}
    )
    with pytest.raises(CheckpointError, match=r"'gemma-4-12b.safetensors' is a stock Gemma 4.*gemma4-12b-ltx-v1"):
        load_gemma4(stock)
    with pytest.raises(CheckpointError, match="stock Gemma 4"):
        load_ltx25_text_path(TRANSFORMER, stock)
    # A repack without any config (keys only), global layers without v_proj: still recognised as Gemma 4.
    bare = _copy(tmp_path, "gemma4-repack.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="is a Gemma 4 without the config and version"):
        inspect_gemma4(bare)


def test_a_gemma3_text_encoder_is_refused_for_ltx25(tmp_path):
    # Gemma 3 keys as ComfyUI's LTX-2 text encoder files store them: every layer has v_proj.
    tensors = {"model.embed_tokens.weight": torch.zeros(8, 4), "model.norm.weight": torch.zeros(4)}
    for i in range(2):
        for part in ("q_norm", "k_norm", "q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"model.layers.{i}.self_attn.{part}.weight"] = torch.zeros(4, 4)
    gemma3 = str(tmp_path / "gemma_3_12B_it.safetensors")
    save_file(tensors, gemma3)
    for call in (lambda: load_gemma4(gemma3), lambda: load_ltx25_text_path(TRANSFORMER, gemma3)):
        with pytest.raises(
            CheckpointError, match=r"'gemma_3_12B_it.safetensors' is Gemma 3, the text encoder of LTX-2"
        ):
            call()
    declared = _copy(tmp_path, "declared.safetensors", gemma=lambda c: {**c, "model_type": "gemma3"})
    with pytest.raises(CheckpointError, match="is Gemma 3"):
        inspect_gemma4(declared)
    # A loaded Gemma 3 encoder (no model_type / gemma_version attributes) against the 2.5 transformer.
    gemma3_encoder = type("GemmaEncoder", (), {"source": type("S", (), {"name": "gemma-3-12b-it"})()})()
    with safe_open(TRANSFORMER, "pt") as f:
        metadata = f.metadata()
    with pytest.raises(
        CheckpointError, match=r"'gemma-3-12b-it' is Gemma 3.*trained with gemma_version 'gemma4-12b-ltx-v1'"
    ):
        check_encoder_for_checkpoint(metadata, gemma3_encoder, "text_transformer.safetensors")


def test_another_gemma_version_is_refused_naming_both(tmp_path, gemma):
    other = _copy(tmp_path, "gemma4-ltx-v2.safetensors", gemma=lambda c: {**c, "gemma_version": "gemma4-12b-ltx-v2"})
    assert load_gemma4(other, dtype=torch.float32).gemma_version == "gemma4-12b-ltx-v2"
    pattern = r"'text_transformer.safetensors' was trained with gemma_version 'gemma4-12b-ltx-v1' but " \
        r"'gemma4-ltx-v2.safetensors' is 'gemma4-12b-ltx-v2'"  # fmt: skip
    with pytest.raises(CheckpointError, match=pattern):
        load_ltx25_text_path(TRANSFORMER, other)
    # An LTX-2.3 checkpoint (no gemma_source_checkpoint) refuses the LTX-2.5 Gemma.
    with pytest.raises(CheckpointError, match="trained with Gemma 3"):
        check_encoder_for_checkpoint({"model_version": "2.3.0"}, gemma, "ltx-2.3-22b-dev.safetensors")


def test_the_gemma3_loader_names_the_ltx25_text_encoder(tmp_path):
    from ltx_av.ltx_core.gemma import inspect_gemma

    with pytest.raises(CheckpointError, match=r"'text_gemma4.safetensors' is Gemma 4 \(the text encoder of LTX-2.5\)"):
        inspect_gemma(GEMMA)
    bare = _copy(tmp_path, "gemma4-repack.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="is Gemma 4"):
        inspect_gemma(bare)


def test_files_that_are_not_the_ltx25_text_encoder_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="is an LTX transformer"):
        inspect_gemma4(TRANSFORMER)
    no_projection = _copy(tmp_path, "gemma4-no-proj.safetensors", drop="text_embedding_projection.")
    assert inspect_gemma4(no_projection).projection_file is None
    with pytest.raises(CheckpointError, match="has no text_embedding_projection.* and neither has"):
        load_ltx25_text_path(TRANSFORMER, no_projection)
    no_tokenizer = _copy(tmp_path, "gemma4-no-tok.safetensors", drop="tokenizer_json")
    with pytest.raises(CheckpointError, match="tokenizer is missing"):
        inspect_gemma4(no_tokenizer)
    missing_layer = _copy(tmp_path, "gemma4-cut.safetensors", drop="model.layers.5.mlp.")
    with pytest.raises(CheckpointError, match=r"3 missing of 84 expected tensors\. missing: layers\.5\.mlp\."):
        load_gemma4(missing_layer)
    with pytest.raises(CheckpointError, match="does not exist"):
        inspect_gemma4(str(tmp_path / "nothing.safetensors"))


def test_unsupported_gemma4_configs_are_named():
    text = json.loads(safe_open(GEMMA, "pt").metadata()["gemma_config"])
    base = dict(text)
    for key, value, message in (
        ("use_bidirectional_attention", "all", "use_bidirectional_attention"),
        ("num_kv_shared_layers", 2, "num_kv_shared_layers"),
        ("num_key_value_heads", 3, "does not divide"),
        ("layer_types", ["full_attention"], "layer_types"),
        ("hidden_size", None, "hidden_size is missing"),
    ):
        config = {**base, "text_config": {**base["text_config"], key: value}}
        if value is None:
            del config["text_config"][key]
        with pytest.raises(ConfigError, match=message):
            Gemma4TextConfig.from_dict(config)
    rope = {**base["text_config"]["rope_parameters"], "full_attention": {"rope_type": "yarn", "rope_theta": 1.0}}
    with pytest.raises(ConfigError, match="'yarn'"):
        Gemma4TextConfig.from_dict({**base, "text_config": {**base["text_config"], "rope_parameters": rope}})


# ---------------------------------------------------------------------------------------------------------------
# Duration head


def test_duration_head_matches_the_reference(reference):
    ref, cases = reference
    head = load_duration_head(HEAD)
    assert head.config == DurationHeadConfig(16, 8, 12, 2, 3, 10)
    with torch.no_grad():
        for i in range(len(cases["prompts"])):
            video, audio = ref[f"prompt{i}.video"], ref[f"prompt{i}.audio"]
            assert _relative(head(video, audio), ref[f"prompt{i}.seconds"]) < TOLERANCE
            assert _relative(head(video, None), ref[f"prompt{i}.seconds_video_only"]) < TOLERANCE
            assert _relative(head(None, audio), ref[f"prompt{i}.seconds_audio_only"]) < TOLERANCE
            frames = [
                predict_duration(head, video, audio, frame_rate=r, min_seconds=lo, max_seconds=hi)[0].num_frames
                for r, lo, hi in cases["duration_cases"]
            ]
            assert frames == ref[f"prompt{i}.num_frames"].tolist()


def test_prompt_to_duration_end_to_end(gemma, text_path, reference):
    ref, cases = reference
    head = load_duration_head(HEAD)
    contexts = encode_prompts(gemma, text_path, cases["prompts"])
    predictions = predict_duration(head, contexts.video, contexts.audio, frame_rate=24.0, min_seconds=1, max_seconds=2)
    for i, prediction in enumerate(predictions):
        assert prediction.seconds == pytest.approx(float(ref[f"prompt{i}.seconds"]), rel=TOLERANCE)
        assert prediction.clamped and prediction.num_frames == 41  # ~2.84 s, clamped to 48 frames, floored to 8k+1


def test_seconds_become_frames_as_the_reference_computes_them(reference):
    ref, cases = reference
    grid = cases["grid"]
    ours = [
        [[seconds_to_num_frames(s, r, lo, hi) for lo, hi in grid["ranges"]] for r in grid["rates"]]
        for s in grid["seconds"]
    ]
    assert ours == ref["frames_grid"].tolist()
    for bad in (
        dict(seconds=float("nan"), frame_rate=24),
        dict(seconds=1.0, frame_rate=0),
        dict(seconds=1.0, frame_rate=24, min_seconds=2, max_seconds=1),
        dict(seconds=1.0, frame_rate=24, min_seconds=0.01),
    ):
        with pytest.raises(InputError):
            seconds_to_num_frames(**bad)


def test_duration_head_config_defaults_are_the_released_sizes(tmp_path, caplog):
    assert DurationHeadConfig.from_metadata({}) == DurationHeadConfig(4096, 2048, 256, 1, 4, 256)
    with pytest.raises(ConfigError, match="does not divide"):
        DurationHeadConfig.from_metadata({"config": json.dumps({"duration_head": {"num_pooler_heads": 5}})})
    with pytest.raises(ConfigError, match="pooler_hidden_dim"):
        DurationHeadConfig.from_metadata({"config": {"duration_head": {"pooler_hidden_dim": 0}}})
    with pytest.raises(CheckpointError, match="holds no duration head"):
        load_duration_head(TRANSFORMER)
    # A file without config metadata means the released sizes: its tiny tensors then do not fit.
    bare = _copy(tmp_path, "head.safetensors", HEAD, metadata={})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_duration_head(bare)
    with pytest.raises(InputError, match="needs the video or the audio"):
        DurationHead(DurationHeadConfig(4, 4, 4, 1, 1, 4))()
    with caplog.at_level(logging.INFO, logger="ltx_av.duration_head"):
        head = load_duration_head(HEAD)
        predict_duration(head, torch.zeros(1, 8, 16), None, frame_rate=24.0)
    assert "duration head:" in caplog.text
