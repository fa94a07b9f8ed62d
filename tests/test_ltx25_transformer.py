"""LTX-2.5: the transformer and conditioned sampling against ltx-core 1.2.0, and the split-file layout.

ltx-core 1.2.0 (the only implementation of LTX-2.5) is not installable here, so its results are stored fixtures:
tests/fixtures/ltx25/make_transformer_fixtures.py wrote tiny transformer files in the official split layout and
what 1.2.0 computes with them; these tests read the same files through LTX-AV's loader (float32).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ltx_av.ltx_core import CheckpointError, InputError
from ltx_av.ltx_core.checkpoint import (
    FileIdentity,
    JoinedComponent,
    build_component,
    check_same_release,
    identify,
    open_checkpoint,
    open_model_files,
)
from ltx_av.ltx_core.conditioning import (
    LTX_CORE_1_0,
    LTX_CORE_1_2,
    FrameCondition,
    KeyframeCondition,
    KeyframeSlots,
    appended_tokens,
    apply_conditions,
    audio_state,
    condition_from_dict,
    condition_to_dict,
    conventions_for,
    video_state,
)
from ltx_av.ltx_core.config import LTX2, LTX23, LTX25, TransformerConfig, parse_model_version, variant_of_version
from ltx_av.ltx_core.patchify import unpatchify_video
from ltx_av.ltx_core.sampling import NO_GUIDANCE, add_noise, denoise, draw_noise, sample
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.transformer import AudioVideoTransformer, StreamInput, default_av_timestep_rule

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ltx25")
TINY = os.path.join(FIXTURES, "transformer_tiny_ltx25.safetensors")
STATIC = os.path.join(FIXTURES, "transformer_tiny_ltx25_static_prompt.safetensors")
MODEL_FILES = {"tiny": TINY, "static_prompt": STATIC}
TOLERANCE = 1e-4  # house rule: relative to the reference's largest magnitude
FPS = 24.0


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    return ((got.float() - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module")
def forward():
    return load_file(os.path.join(FIXTURES, "transformer_forward.safetensors"))


@pytest.fixture(scope="module")
def loops():
    return load_file(os.path.join(FIXTURES, "transformer_loop.safetensors"))


@pytest.fixture(scope="module")
def models():
    return {
        name: build_component(path, "transformer", AudioVideoTransformer, dtype=torch.float32)
        for name, path in MODEL_FILES.items()
    }


def _streams(x: dict[str, torch.Tensor], keyframes: bool = True) -> tuple[StreamInput, StreamInput]:
    video = StreamInput(
        latent=x["video_latent"],
        sigma=x["video_sigma"],
        timesteps=x["video_timesteps"],
        positions=x["video_positions"],
        context=x["video_context"],
        keyframes=x["video_keyframes"] if keyframes else None,
    )
    audio = StreamInput(
        latent=x["audio_latent"],
        sigma=x["audio_sigma"],
        timesteps=x["audio_timesteps"],
        positions=x["audio_positions"],
        context=x["audio_context"],
    )
    return video, audio


# -- the transformer file and its config -----------------------------------------------------------------------


def test_the_split_transformer_file_is_an_ltx25_transformer():
    ckpt = open_checkpoint(TINY)
    assert (ckpt.variant, ckpt.role, ckpt.components) == (LTX25, "transformer", ("transformer", "text_encoder"))
    ident = identify(TINY)
    assert ident.variants == {LTX25} and ident.gemma_version == "gemma4-12b-ltx-v1"
    assert ident.describe() == "'transformer_tiny_ltx25.safetensors' (LTX-2.5 transformer)"
    config = ckpt.component_config("transformer")
    assert (config.variant, config.ff_bias, config.audio_ff_bias, config.use_keyframes_abs_pos_embedding) == (
        LTX25,
        False,
        True,
        True,
    )
    assert config.use_prompt_adaln_single and default_av_timestep_rule(config) == "per_token_cross_gate"
    static = open_checkpoint(STATIC).component_config("transformer")
    assert (static.use_prompt_adaln_single, static.audio_ff_bias) == (False, False)


def test_module_keys_follow_the_25_switches(models):
    tiny = models["tiny"].state_dict()
    assert tuple(tiny["keyframes_abs_pos_embedding"].shape) == (1, 32)
    assert "transformer_blocks.0.ff.net.0.proj.bias" not in tiny and "transformer_blocks.1.ff.net.2.bias" not in tiny
    assert "transformer_blocks.0.audio_ff.net.0.proj.bias" in tiny and "prompt_adaln_single.linear.weight" in tiny
    static = models["static_prompt"].state_dict()
    assert "transformer_blocks.0.audio_ff.net.2.bias" not in static
    assert not any(k.startswith(("prompt_adaln_single.", "audio_prompt_adaln_single.")) for k in static)
    assert "transformer_blocks.0.prompt_scale_shift_table" in static  # the static table stays
    assert models["tiny"].av_timestep_rule == "per_token_cross_gate"


def test_older_configs_keep_their_defaults():
    """No 2.5 key: biases, prompt AdaLN, no keyframe embedding, and 1.0.0's absent rope_type (interleaved)."""
    v23 = TransformerConfig.from_dict(
        {"caption_proj_before_connector": True, **_V2_REST, "cross_attention_adaln": True}
    )
    assert (v23.variant, v23.ff_bias, v23.use_keyframes_abs_pos_embedding, v23.rope_type) == (
        LTX23,
        True,
        False,
        "interleaved",
    )
    # An LTX-2.3-shaped section in a 2.5 file is LTX-2.5 (its absent keys read as 1.2.0 reads them).
    assert (
        TransformerConfig.from_dict({**_V2_REST, "caption_proj_before_connector": True}, "2.5.0").rope_type == "split"
    )
    with pytest.raises(Exception, match="'transformer.ff_bias' is 'no'; expected true or false"):
        TransformerConfig.from_dict({"ff_bias": "no", "caption_channels": 8})


_V2_REST = {
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
}


# -- forward parity ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODEL_FILES))
def test_forward_with_keyframe_tokens_matches_reference(models, forward, name):
    """Batch of two, first frame kept for item 0, an appended image keyframe (unmarked) and a generated slot
    (marked), audio at another sigma per item: both streams."""
    video, audio = _streams(forward)
    with torch.no_grad():
        v, a = models[name](video, audio)
    assert _relative_error(v, forward[f"{name}.video_velocity"]) <= TOLERANCE
    assert _relative_error(a, forward[f"{name}.audio_velocity"]) <= TOLERANCE


def test_the_keyframe_embedding_reaches_exactly_the_marked_tokens(models, forward):
    marked = forward["video_keyframes"].bool()
    assert marked[:, :6].all() and marked[:, -6:].all() and not marked[:, 6:-6].any()  # frame 0 and the slot
    video, audio = _streams(forward, keyframes=False)
    with torch.no_grad():
        v, _ = models["tiny"](video, audio)
    expected = forward["tiny.video_velocity_unmarked"]
    assert _relative_error(v, expected) <= TOLERANCE
    assert _relative_error(expected, forward["tiny.video_velocity"]) > 1e-2  # the marks change the output
    with pytest.raises(InputError, match="keyframes marks video tokens; the audio stream has none"):
        models["tiny"](video, StreamInput(**{**audio.__dict__, "keyframes": torch.ones(2, audio.tokens)}))
    with pytest.raises(InputError, match=r"keyframes has shape \[2, 3\]"):
        models["tiny"](StreamInput(**{**video.__dict__, "keyframes": torch.ones(2, 3)}), audio)


# -- conditioned sampling against ltx-pipelines 1.2.0 --------------------------------------------------------


def _refine_conditions(x):
    return [
        FrameCondition(x["refine.first_frame"], 0.6, 0),
        KeyframeCondition(x["refine.keyframe"], 9, 0.7),
        KeyframeSlots((5,)),
    ]


def test_conditioned_state_matches_reference(loops):
    """Replace at strength 0.6 on a given latent, a keyframe at pixel frame 9, a slot at pixel frame 5: 1.2.0
    sets only the kept values, spans one-image keyframes one pixel frame, marks frame 0 and the slot."""
    x = loops
    state = apply_conditions(video_state(x["refine.video_in"], FPS), _refine_conditions(x), LTX_CORE_1_2)
    assert torch.equal(state.latent, x["refine.video_state.latent"])
    assert torch.equal(state.clean, x["refine.video_state.clean"])
    assert torch.allclose(state.mask, x["refine.video_state.mask"])
    assert torch.equal(state.positions, x["refine.video_state.positions"])
    assert torch.equal(state.keyframes, x["refine.video_state.keyframes"].bool())
    older = apply_conditions(video_state(x["refine.video_in"], FPS), _refine_conditions(x)[:2], LTX_CORE_1_0)
    keyframe_end = older.positions[0, 0, -1, 1].item()
    assert keyframe_end == pytest.approx(17 / FPS) and state.positions[0, 0, -7, 1].item() == pytest.approx(10 / FPS)


def test_refine_loop_matches_reference(models, loops):
    """3 Euler steps from sigma 0.909375 on a given latent with both image conditions and a generated slot, audio
    generated; the slot's own generated content too."""
    x, model = loops, models["tiny"]
    contexts = TextContexts(x["refine.video_context"], x["refine.audio_context"])
    kwargs = dict(
        frame_rate=FPS,
        positive=contexts,
        negative=None,
        sigmas=x["refine.sigmas"],
        audio_latent=x["refine.audio_in"],
        conditions=_refine_conditions(x),
        noise_scale=float(x["refine.noise_scale"]),
    )
    video, audio = sample(model, x["refine.video_in"], seed=5, **kwargs)
    assert _relative_error(video, x["refine.video_out"]) <= TOLERANCE
    assert _relative_error(audio, x["refine.audio_out"]) <= TOLERANCE
    # The same from injected noise (it is what the seed drew), then the slot read from the final state.
    injected = (x["refine.video_noise"], x["refine.audio_noise"])
    assert all(
        torch.equal(a, b) for a, b in zip(draw_noise(5, injected[0].shape, injected[1].shape), injected, strict=True)
    )
    state = apply_conditions(video_state(x["refine.video_in"], FPS), _refine_conditions(x), LTX_CORE_1_2)
    state = add_noise(state, injected[0], float(x["refine.noise_scale"]), LTX_CORE_1_2)
    sound = add_noise(audio_state(x["refine.audio_in"]), injected[1], float(x["refine.noise_scale"]), LTX_CORE_1_2)
    state, _ = denoise(model, state, sound, x["refine.sigmas"], contexts, None, NO_GUIDANCE, NO_GUIDANCE)
    slot = unpatchify_video(appended_tokens(state).latent[:, -6:], 1, 2, 3)
    assert _relative_error(slot, x["refine.slots_out"]) <= TOLERANCE


def test_audio_to_video_loop_matches_reference(models, loops):
    """Kept audio (denoise mask 0): 1.2.0 shows the frozen stream at sigma 0, which the other stream's gate and
    its prompt AdaLN read; the result differs measurably from showing the step's sigma."""
    x, model = loops, models["tiny"]
    kwargs = dict(
        frame_rate=FPS,
        positive=TextContexts(x["a2v.video_context"], x["a2v.audio_context"]),
        negative=None,
        sigmas=x["a2v.sigmas"],
        seed=7,
        audio_latent=x["a2v.audio_in"],
        audio_mask=torch.zeros(1, x["a2v.audio_in"].shape[2]),
        conditions=[FrameCondition(x["refine.first_frame"], 1.0, 0)],
    )
    video, audio = sample(model, torch.zeros(1, 128, 3, 2, 3), **kwargs)
    assert _relative_error(video, x["a2v.video_out"]) <= TOLERANCE
    assert torch.equal(audio, x["a2v.audio_in"]) and torch.equal(x["a2v.audio_out"], x["a2v.audio_in"])
    other, _ = sample(model, torch.zeros(1, 128, 3, 2, 3), conventions=LTX_CORE_1_0, **kwargs)
    assert _relative_error(other, x["a2v.video_out"]) > 1e-3


def test_keyframe_slots_are_checked(models, tiny_checkpoints):
    state = video_state(torch.zeros(1, 128, 3, 2, 3), FPS)
    for frames, match in (
        ((17,), "pixel frames of the video, which has frames 0..16"),
        ((9, 5), "increasing"),
        ((), "non-empty"),
    ):
        with pytest.raises(InputError, match=match):
            apply_conditions(state, [KeyframeSlots(frames)])
    with pytest.raises(InputError, match=r"starting latent must be \[1, 128, 2, 2, 3\]"):
        apply_conditions(state, [KeyframeSlots((3, 5), torch.zeros(1, 128, 1, 2, 3))])
    with pytest.raises(InputError, match="put all slots in one KeyframeSlots"):
        apply_conditions(state, [KeyframeSlots((3,)), KeyframeSlots((5,))])
    seeded = apply_conditions(state, [KeyframeSlots((3, 5), torch.ones(1, 128, 2, 2, 3))])
    assert seeded.latent.shape[1] == 18 + 12 and torch.equal(seeded.latent[:, 18:], torch.ones(1, 12, 128))
    assert seeded.keyframes[0].tolist() == [True] * 6 + [False] * 12 + [True] * 12
    back = condition_from_dict(condition_to_dict(KeyframeSlots((3, 5))))
    assert isinstance(back, KeyframeSlots) and back.frame_indices == (3, 5)
    older = build_component(tiny_checkpoints["LTX-2.3"], "transformer", AudioVideoTransformer)
    with pytest.raises(InputError, match="generated keyframe slots need a model with the keyframe embedding"):
        sample(
            older,
            torch.zeros(1, 128, 3, 2, 3),
            frame_rate=FPS,
            positive=TextContexts(torch.zeros(1, 2, 64), torch.zeros(1, 2, 32)),
            negative=None,
            sigmas=[1.0, 0.0],
            conditions=[KeyframeSlots((5,))],
        )
    assert conventions_for(LTX25) is LTX_CORE_1_2 and conventions_for(LTX23) is LTX_CORE_1_0


# -- versions of split files ------------------------------------------------------------------------------------


def _write(path, tensors, config=None, **metadata) -> str:
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    if config is not None:
        meta["config"] = json.dumps(config)
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    return str(path)


_BWE_VOCODER = {"vocoder": {"resblock": "AMP1"}, "bwe": {"resblock": "AMP1"}}
_GEMMA4 = {"model_type": "gemma4_unified", "gemma_version": "gemma4-12b-ltx-v1", "text_config": {"hidden_size": 8}}


def test_every_split_file_says_its_release(tmp_path, tiny_checkpoints):
    z = torch.zeros(1)
    conv = torch.zeros(1, 1, 1, 1, 1)
    files = {
        "video_vae_conv": _write(
            tmp_path / "ltx-2.5-video-vae-conv-bf16.safetensors",
            {"encoder.conv_in.conv.weight": conv, "decoder.conv_in.conv.weight": conv, "per_channel_statistics.mean-of-means": z},
            {"vae": {"_class_name": "CausalVideoAutoencoder"}},
            model_version="2.5.0",
        ),
        "video_vae_diffusion": _write(
            tmp_path / "ltx-2.5-video-vae-bf16.safetensors",
            {"encoder.conv_in.conv.weight": conv, "decoder.conv_in.weight": torch.zeros(2, 2)},
            {"vae": {"_class_name": "CausalDiffusionVAE", "encoder": {}, "decoder": {}}},
        ),
        "audio_vae": _write(
            tmp_path / "ltx-2.5-audio-vae-bf16.safetensors",
            {"audio_vae.decoder.conv_in.conv.weight": z, "vocoder.vocoder.conv_pre.weight": z, "vocoder.bwe_generator.conv_pre.weight": z},
            {"audio_vae": {}, "vocoder": _BWE_VOCODER},
            model_version="2.5.0",
        ),
        "text_encoder": _write(
            tmp_path / "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors",
            {"model.layers.0.mlp.up_proj.weight": z, "text_embedding_projection.video_aggregate_embed.weight": torch.zeros(4, 16),
             "tokenizer_json": torch.zeros(3, dtype=torch.uint8)},
            None,
            format="pt",
            gemma_config=_GEMMA4,
        ),
        "upsampler": _write(
            tmp_path / "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors",
            {"initial_conv.weight": z},
            {"_class_name": "LatentUpsampler", "in_channels": 128},
            model_version="2.5.0",
        ),
        "duration_head": _write(
            tmp_path / "ltx-2.5-duration-head-bf16.safetensors",
            {"duration_head.mlp_out.weight": z},
            {"transformer": {"cross_attention_dim": 32}, "duration_head": {}},
        ),
    }  # fmt: skip
    expected = {
        "video_vae_conv": ("video_vae", {LTX25}, "conv"),
        "video_vae_diffusion": ("video_vae", {LTX25}, "diffusion"),
        "audio_vae": ("audio_vae", {LTX25}, None),
        "text_encoder": ("text_encoder", {LTX25}, None),
        "upsampler": ("upsampler", {LTX25}, None),
        "duration_head": ("duration_head", {LTX25}, None),
    }
    for name, path in files.items():
        ident = identify(path)
        assert (ident.role, ident.variants, ident.video_decoder) == expected[name], name
    assert identify(files["text_encoder"]).gemma_version == "gemma4-12b-ltx-v1"
    assert open_checkpoint(files["duration_head"]).component_config("duration_head") == {}
    # Without model_version, what the contents allow: an LTX-2.3 / 2.5 audio VAE, an unknown conv VAE.
    unversioned = _write(
        tmp_path / "audio.safetensors", {"vocoder.bwe_generator.conv_pre.weight": z}, {"vocoder": _BWE_VOCODER}
    )
    assert identify(unversioned).variants == {LTX23, LTX25} and identify(unversioned).release == "LTX-2.3 or LTX-2.5"
    bare = _write(tmp_path / "vae.safetensors", {"decoder.conv_in.conv.weight": conv}, {"vae": {}})
    assert identify(bare).variants == frozenset() and identify(bare).release == "an unknown release"
    # The LTX-2.3 / LTX-2 monoliths stay what they were.
    assert (
        identify(tiny_checkpoints["LTX-2.3"]).variants == {LTX23}
        and identify(tiny_checkpoints["LTX-2.3"]).role == "checkpoint"
    )
    assert open_checkpoint(tiny_checkpoints["LTX-2"]).variant == LTX2


def test_model_versions():
    assert parse_model_version("2.5.0") == (2, 5, 0) and parse_model_version("2.4-rc2") == (2, 4)
    assert parse_model_version("2.3.rc1") == (2, 3) and parse_model_version(None) == ()
    assert [variant_of_version(v) for v in ("2", "2.0.1", "2.3.0", "2.4.0", "2.5.1", "2.6.0", "x")] == [
        LTX2, LTX2, LTX23, LTX25, LTX25, None, None,
    ]  # fmt: skip


def test_newer_releases_are_refused(tmp_path):
    for version in ("2.6.0", "3.0"):
        path = _write(
            tmp_path / f"v{version}.safetensors",
            {"vae.decoder.conv_in.conv.weight": torch.zeros(1)},
            {"vae": {}},
            model_version=version,
        )
        with pytest.raises(
            CheckpointError, match=f"model version {version}; LTX-AV supports LTX-2, LTX-2.3 and LTX-2.5"
        ):
            open_checkpoint(path)
    gemma = _write(tmp_path / "te.safetensors", {"model.x": torch.zeros(1)}, None, gemma_config={"model_type": "llama"})
    with pytest.raises(CheckpointError, match="text encoder of model_type 'llama'"):
        open_checkpoint(gemma)


def test_files_of_different_releases_are_refused_by_name(tiny_checkpoints, tmp_path):
    monolith = tiny_checkpoints["LTX-2.3"]
    with pytest.raises(CheckpointError) as error:
        open_model_files(transformer=TINY, video_vae=monolith)
    text = str(error.value)
    assert "'tiny-ltx-2.3.safetensors' (LTX-2.3 checkpoint)" in text
    assert "'transformer_tiny_ltx25.safetensors' (LTX-2.5 transformer)" in text and "different releases" in text
    with pytest.raises(CheckpointError, match="'tiny-ltx-2.safetensors' \\(LTX-2 checkpoint\\).*different releases"):
        check_same_release([identify(tiny_checkpoints["LTX-2.3"]), identify(tiny_checkpoints["LTX-2"])])
    # A file that does not tell (an unversioned audio VAE of the 2.3 / 2.5 design) fits either release.
    audio = _write(
        tmp_path / "audio.safetensors",
        {
            "audio_vae.decoder.conv_in.conv.weight": torch.zeros(1),
            "vocoder.bwe_generator.conv_pre.weight": torch.zeros(1),
        },
        {"audio_vae": {}, "vocoder": _BWE_VOCODER},
    )
    assert open_model_files(transformer=TINY, audio_vae=audio).variant == LTX25
    assert open_model_files(checkpoint=monolith, audio_vae=audio).variant == LTX23
    with pytest.raises(
        CheckpointError, match="'tiny-ltx-2.3.safetensors' \\(LTX-2.3 checkpoint\\).*different releases"
    ):
        open_model_files(audio_vae=audio, transformer=TINY, video_vae=monolith)
    with pytest.raises(
        CheckpointError, match="was given as the video VAE but holds no video VAE \\(it holds: transformer, text"
    ):
        open_model_files(video_vae=TINY)
    ids = [identify(TINY), FileIdentity("x", "x.safetensors", "upsampler", ("upsampler",), frozenset(), None)]
    assert check_same_release(ids) == {LTX25}


def test_the_split_text_path_joins_two_files(tmp_path):
    """LTX-2.5's connectors (and their config) ship in the transformer file, the projection with Gemma 4."""
    te = _write(
        tmp_path / "gemma4-with-proj.safetensors",
        {
            "model.layers.0.mlp.up_proj.weight": torch.zeros(1),
            "text_embedding_projection.video_aggregate_embed.weight": torch.zeros(32, 8 * 7),
            "text_embedding_projection.video_aggregate_embed.bias": torch.zeros(32),
            "text_embedding_projection.audio_aggregate_embed.weight": torch.zeros(16, 8 * 7),
            "text_embedding_projection.audio_aggregate_embed.bias": torch.zeros(16),
        },
        None,
        gemma_config=_GEMMA4,
    )
    with pytest.raises(CheckpointError, match="connectors and config ship in the transformer file"):
        open_checkpoint(te).component_config("text_encoder")
    files = open_model_files(transformer=TINY, text_encoder=te)
    joined = files.source("text_encoder")
    assert isinstance(joined, JoinedComponent) and files.source("transformer").name == os.path.basename(TINY)
    config = joined.component_config("text_encoder")
    assert (config.gemma_hidden_size, config.gemma_num_hidden_states, config.video_dim) == (8, 7, 32)
    keys = joined.keys("text_encoder")
    assert "text_embedding_projection.audio_aggregate_embed.bias" in keys
    assert any(k.startswith("video_embeddings_connector.") for k in keys)
    assert set(joined.state_dict("text_encoder")) == set(keys)
    assert set(open_checkpoint(te).keys("gemma")) == {"model.layers.0.mlp.up_proj.weight"}


def test_a_transformer_file_is_checked_against_its_own_config(tmp_path):
    with safe_open(TINY, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    config["transformer"]["num_layers"] = 3
    odd = tmp_path / "more-layers.safetensors"
    save_file(tensors, str(odd), metadata={**metadata, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="'transformer.num_layers' says 3 but the file holds 2"):
        build_component(odd, "transformer", AudioVideoTransformer)
    missing = tmp_path / "no-marker.safetensors"
    save_file(
        {k: v for k, v in tensors.items() if not k.endswith("keyframes_abs_pos_embedding")},
        str(missing),
        metadata=metadata,
    )
    with pytest.raises(CheckpointError, match="1 missing of .*missing: keyframes_abs_pos_embedding"):
        build_component(missing, "transformer", AudioVideoTransformer)
    copied = tmp_path / "ltx-2.5-22b-dev-transformer-bf16.safetensors"
    shutil.copy(TINY, copied)
    assert build_component(copied, "transformer", AudioVideoTransformer).config.variant == LTX25
