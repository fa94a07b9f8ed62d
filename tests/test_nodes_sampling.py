"""Generation nodes outside ComfyUI: empty latents, image conditions, the sampler, masks and latent files."""

from __future__ import annotations

import pytest
import torch

from ltx_av.ltx_core.conditioning import condition_pixels
from ltx_av.ltx_core.errors import InputError
from ltx_av.nodes import NODE_CLASS_MAPPINGS, host, latent_files
from ltx_av.nodes.latent_files import LTXLoadLatent, LTXSaveLatent
from ltx_av.nodes.model import load_transformer
from ltx_av.nodes.sampling import (
    NODES,
    LTXEmptyLatent,
    LTXImageCondition,
    LTXSampler,
    LTXTimeWindowMask,
    choose_sigmas,
    guidance_settings,
)
from ltx_av.nodes.video import load_video

FAST = dict(schedule="ltx2", steps=2, stg_blocks="1")


@pytest.fixture(scope="module")
def models(tiny_checkpoints):
    """variant -> (LTX_MODEL, LTX_VAE with its encoder) on the CPU."""
    out = {}
    for variant, path in tiny_checkpoints.items():
        model = load_transformer(path, device="cpu", offload_device="cpu")
        vae = load_video(path, device="cpu", offload_device="cpu", parts=("encoder",))
        out[variant] = (model, vae)
    return out


def _conditioning(model, seed=0, variant=None, width_v=None):
    """A CONDITIONING like LTX-AV Text Encode makes for ``model``'s text path."""
    c = model.config
    v1 = c.text_path_version == 1
    dv = width_v or (c.caption_channels if v1 else c.video_dim)
    da = c.caption_channels if v1 else c.audio_dim
    g = torch.Generator().manual_seed(seed)
    signature = {"variant": variant or model.variant, "video_dim": dv, "audio_dim": da, "checkpoint": "tiny"}
    return [
        [
            torch.randn(1, 7, dv, generator=g),
            {"ltx_audio_context": torch.randn(1, 7, da, generator=g), "ltx_text_path": signature},
        ]
    ]


def test_nodes_are_registered_with_tooltips():
    for cls in (*NODES, *latent_files.NODES):
        assert NODE_CLASS_MAPPINGS[cls.__name__] is cls and cls.DISPLAY_NAME and cls.CATEGORY.startswith("LTX-AV/")
        assert cls.__name__.startswith("LTX") and not cls.__name__.startswith("LTXV")
        spec = cls.INPUT_TYPES()
        for section in spec.values():
            for name, (_, options) in section.items():
                assert options.get("tooltip"), (cls.__name__, name)


def test_empty_latent_shapes_carry_the_frame_rate():
    video, audio = LTXEmptyLatent().make(768, 512, 121, 24.0, 2)
    assert video["samples"].shape == (2, 128, 16, 16, 24) and video["frame_rate"] == 24.0
    assert audio["samples"].shape == (2, 8, 126, 16) and audio["frame_rate"] == 24.0
    assert not video["samples"].any() and "ltx_video_fit" not in video


def test_empty_latent_sizes_follow_the_vae_fit_rule():
    video, audio = LTXEmptyLatent().make(1280, 720, 100, 24.0, 1, "pad")
    assert video["samples"].shape == (1, 128, 14, 23, 40)  # 105 frames of 1280x736
    fit = video["ltx_video_fit"]
    assert (fit["frames"], fit["height"], fit["fitted_frames"], fit["fitted_height"]) == (100, 720, 105, 736)
    assert audio["samples"].shape[2] == round(100 / 24 * 25) and audio["duration"] == 100 / 24
    video, audio = LTXEmptyLatent().make(1280, 720, 100, 24.0, 1, "crop")
    assert video["samples"].shape == (1, 128, 13, 22, 40) and audio["samples"].shape[2] == round(97 / 24 * 25)
    with pytest.raises(InputError, match="frames must be 8k\\+1 .* got 100, nearest valid: 97 or 105"):
        LTXEmptyLatent().make(1280, 704, 100, 24.0, 1, "error")


def test_image_condition_attaches_replace_and_keyframe_conditions(models):
    model, vae = models["LTX-2"]
    video, _ = LTXEmptyLatent().make(96, 64, 17, 24.0)
    image = torch.rand(1, 50, 70, 3)
    (once,) = LTXImageCondition().condition(vae, image, video, 0, 1.0, 33)
    (twice,) = LTXImageCondition().condition(vae, image, once, -1, 0.7, 0)
    first, last = twice["ltx_conditions"]
    assert (first["kind"], first["index"], first["strength"]) == ("replace", 0, 1.0)
    assert (last["kind"], last["index"], last["strength"]) == ("keyframe", 16, 0.7)
    assert first["latent"].shape == (1, 128, 1, 2, 3) and "ltx_conditions" not in video
    assert torch.equal(last["latent"], vae.encode_pixels(condition_pixels(image, 64, 96, 0)))
    with pytest.raises(InputError, match=r"frame_index 17 puts 1 frame\(s\) at frames 17..17, outside the video"):
        LTXImageCondition().condition(vae, image, video, 17, 1.0, 0)
    with pytest.raises(InputError, match="frame_index -18"):
        LTXImageCondition().condition(vae, image, video, -18, 1.0, 0)


def test_sampler_generates_video_and_audio_with_conditions_and_previews(models):
    model, vae = models["LTX-2"]
    video, audio = LTXEmptyLatent().make(96, 64, 17, 24.0)
    (video,) = LTXImageCondition().condition(vae, torch.rand(1, 64, 96, 3), video, 0, 1.0, 0)
    (video,) = LTXImageCondition().condition(vae, torch.rand(1, 64, 96, 3), video, -1, 1.0, 0)
    seen = []
    host.set_progress_listener(lambda value, total, preview: seen.append((value, total, preview)))
    try:
        out_video, out_audio = LTXSampler().run(
            model, _conditioning(model, 1), video, 5, negative=_conditioning(model, 2), audio_latent=audio, **FAST
        )
    finally:
        host.set_progress_listener(None)
    assert out_video["samples"].shape == (1, 128, 3, 2, 3) and out_video["frame_rate"] == 24.0
    assert "ltx_conditions" not in out_video and out_audio["samples"].shape == audio["samples"].shape
    # strength 1 keeps the replaced first frame exactly
    torch.testing.assert_close(out_video["samples"][:, :, :1], video["ltx_conditions"][0]["latent"])
    assert [(v, t) for v, t, _ in seen] == [(1, 2), (2, 2)] and all(p.size[0] > 0 for *_, p in seen)


def test_sampler_keeps_encoded_audio_and_runs_video_only(models):
    model, _ = models["LTX-2.3"]
    video, audio = LTXEmptyLatent().make(64, 64, 9, 25.0)
    audio = {**audio, "samples": torch.randn_like(audio["samples"])}  # as from LTX-AV Audio Encode
    args = dict(schedule="distilled")
    _, kept = LTXSampler().run(model, _conditioning(model), video, 0, audio_latent=audio, **args)
    assert torch.equal(kept["samples"], audio["samples"])
    _, regenerated = LTXSampler().run(
        model, _conditioning(model), video, 0, audio_latent=audio, audio_mode="generate", **args
    )
    assert not torch.equal(regenerated["samples"], audio["samples"])
    only, none = LTXSampler().run(model, _conditioning(model), video, 0, **args)
    assert none is None and only["samples"].shape == video["samples"].shape


def test_retake_through_the_time_window_mask(models):
    model, _ = models["LTX-2"]
    source = {"samples": torch.randn(1, 128, 3, 2, 2), "type": "video", "frame_rate": 24.0}
    (masked,) = LTXTimeWindowMask().mask(source, 0.5, 1.0)
    assert masked["noise_mask"].view(-1).tolist() == [0.0, 0.0, 1.0]
    (out, _) = LTXSampler().run(model, _conditioning(model), masked, 1, schedule="stage2")
    assert torch.equal(out["samples"][:, :, :2], source["samples"][:, :, :2])
    assert not torch.equal(out["samples"][:, :, 2], source["samples"][:, :, 2])


def test_guidance_and_schedule_defaults_follow_the_checkpoint_version():
    video, audio = guidance_settings("LTX-2.3", True, {"cfg_audio": 5.0}, None)
    assert (video.cfg, video.stg, video.stg_blocks, video.modality, video.rescale) == (3.0, 1.0, (28,), 3.0, 0.7)
    assert (audio.cfg, audio.stg_blocks) == (5.0, (28,))
    video, _ = guidance_settings("LTX-2", False, {}, None)
    assert not (video.needs_uncond or video.needs_perturbed or video.needs_isolated)
    assert guidance_settings("LTX-2", True, {}, ())[0].needs_perturbed is False
    sigmas, guided = choose_sigmas("ltx2", 0, "LTX-2.3", None)
    assert sigmas.numel() == 31 and guided
    assert choose_sigmas("distilled", 0, "LTX-2", None)[0].tolist()[-2:] == [0.421875, 0.0]
    assert choose_sigmas("stage2", 5, "LTX-2", None, torch.tensor([0.8, 0.3, 0.0]))[0].tolist() == pytest.approx(
        [0.8, 0.3, 0.0]
    )


def test_settings_official_runs_the_checkpoints_recipe_and_says_which_widgets_it_left(models, caplog, monkeypatch):
    """The widgets show LTX-2.3's recipe; settings = official (the widget's default) runs the checkpoint's and
    names the widget values it did not use; as set (the default for scripts) uses them."""
    import ltx_av.nodes.sampling as sampling_nodes

    spec = LTXSampler.INPUT_TYPES()
    assert spec["optional"]["settings"][1]["default"] is True and list(spec["optional"])[-1] == "settings"
    assert (spec["required"]["steps"][1]["default"], spec["required"]["cfg_audio"][1]["default"]) == (30, 7.0)
    used = []

    def fake_sample(model, video, **kwargs):  # records what the sampler would run with
        used.append((kwargs["sigmas"].numel() - 1, kwargs["video_guidance"], kwargs["audio_guidance"]))
        return video, kwargs["audio_latent"]

    monkeypatch.setattr(sampling_nodes, "sample", fake_sample)
    monkeypatch.setattr(sampling_nodes, "check_guidance_blocks", lambda *a: None)  # official block 29; tiny has 2
    model, _ = models["LTX-2"]
    video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
    widgets = dict(steps=30, cfg_video=5.0, cfg_audio=7.0, stg_blocks="1", audio_latent=audio)
    neg = _conditioning(model, 2)
    with caplog.at_level("INFO", logger="ltx_av"):
        LTXSampler().run(model, _conditioning(model), video, 0, negative=neg, settings=True, **widgets)
    steps, v, a = used.pop()
    assert steps == 40 and (v.cfg, v.stg_blocks, a.cfg) == (3.0, (29,), 7.0)  # LTX-2's official recipe
    assert "not used: steps 30 (official 40), cfg_video 5 (official 3), stg_blocks '1'" in caplog.text
    LTXSampler().run(model, _conditioning(model), video, 0, negative=neg, **widgets)  # as set
    steps, v, a = used.pop()
    assert steps == 30 and (v.cfg, v.stg_blocks, a.cfg) == (5.0, (1,), 7.0)
    LTXSampler().run(model, _conditioning(model), video, 0, schedule="distilled", settings=True, **widgets)
    steps, v, a = used.pop()
    assert steps == 8 and not (v.needs_uncond or v.needs_perturbed or a.needs_uncond)  # unguided schedule


def test_sampler_rejects_bad_input_with_clear_errors(models):
    model, _ = models["LTX-2"]
    video, audio = LTXEmptyLatent().make(96, 64, 17, 24.0)
    run = LTXSampler().run
    with pytest.raises(InputError, match="encoded with the LTX-2.3 text path .* but the model is LTX-2"):
        run(model, _conditioning(model, variant="LTX-2.3"), video, 0, **FAST)
    with pytest.raises(InputError, match="negative was encoded .*expects 32 / 32"):
        run(model, _conditioning(model), video, 0, negative=_conditioning(model, width_v=64), **FAST)
    with pytest.raises(InputError, match="holds 2 prompts"):
        run(model, _conditioning(model) * 2, video, 0, **FAST)
    with pytest.raises(InputError, match="not made by Text Encode"):
        run(model, [[torch.zeros(1, 7, 32), {}]], video, 0, **FAST)
    short = {**audio, "samples": audio["samples"][:, :, :10]}
    with pytest.raises(InputError, match="audio_latent has 10 latent frames .* needs 18"):
        run(model, _conditioning(model), video, 0, audio_latent=short, **FAST)
    with pytest.raises(InputError, match="sigmas input must decrease from start to end"):
        run(model, _conditioning(model), video, 0, sigmas=torch.tensor([1.0, 0.5, 0.7, 0.0]), **FAST)
    with pytest.raises(InputError, match=r"video STG blocks \[29\] name blocks the model does not have"):
        run(model, _conditioning(model), video, 0, negative=_conditioning(model), schedule="ltx2", steps=2)
    with pytest.raises(InputError, match="needs a negative prompt"):
        run(model, _conditioning(model), video, 0, **FAST)
    with pytest.raises(InputError, match="video_latent has batch 1 but audio_latent has 2"):
        run(
            model,
            _conditioning(model),
            video,
            0,
            audio_latent={**audio, "samples": audio["samples"].repeat(2, 1, 1, 1)},
            **FAST,
        )
    bad = {
        **video,
        "ltx_conditions": [{"kind": "replace", "latent": torch.zeros(1, 128, 1, 4, 4), "index": 0, "strength": 1.0}],
    }
    with pytest.raises(InputError, match="encoded at 128x128 pixels but the video latent is 96x64"):
        run(model, _conditioning(model), bad, 0, negative=_conditioning(model), **FAST)


def test_latents_survive_save_and_load_with_their_conditions(models, tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_OUTPUT_DIR", str(tmp_path))
    _, vae = models["LTX-2"]
    video, audio = LTXEmptyLatent().make(1000, 64, 17, 25.0)
    (video,) = LTXImageCondition().condition(vae, torch.rand(1, 64, 96, 3), video, 8, 0.5, 0)
    (audio,) = LTXTimeWindowMask().mask(audio, 0.1, 0.3)
    LTXSaveLatent().save(video, "run/a", audio)
    LTXSaveLatent().save(video, "run/a")
    files = LTXLoadLatent.INPUT_TYPES()["required"]["file"][0]
    assert files == ["run/a_00001.ltx.safetensors", "run/a_00002.ltx.safetensors"]
    loaded_video, loaded_audio = LTXLoadLatent().load(files[0])
    assert loaded_video.keys() == video.keys() and loaded_audio.keys() == audio.keys()
    assert torch.equal(loaded_video["ltx_conditions"][0]["latent"], video["ltx_conditions"][0]["latent"])
    assert loaded_video["ltx_video_fit"] == video["ltx_video_fit"] and loaded_video["frame_rate"] == 25.0
    assert torch.equal(loaded_audio["noise_mask"], audio["noise_mask"])
    assert LTXLoadLatent().load(files[1])[1] is None
    with pytest.raises(InputError, match="outside the output folder"):
        LTXSaveLatent().save(video, "../escape")


def test_sampler_stops_between_forwards_when_interrupted(models):
    model, _ = models["LTX-2"]
    video, _ = LTXEmptyLatent().make(64, 64, 9, 24.0)
    calls = []
    hook = model.model.patchify_proj.register_forward_hook(lambda *_: calls.append(1))
    host.request_interrupt()
    try:
        with pytest.raises(host.Interrupted):
            LTXSampler().run(model, _conditioning(model), video, 0, negative=_conditioning(model), **FAST)
    finally:
        hook.remove()
    assert calls == [1]  # the first forward ran, then the request was seen before the second
