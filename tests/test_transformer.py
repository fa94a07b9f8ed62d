"""The audio-video transformer against ltx-core 1.0.0 on the tiny official-layout monoliths (float32)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformer_cases import Case, disabled, make_case, reference_perturbations, stg_at

from ltx_av.ltx_core import InputError
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.perturbations import Perturbations, Skip, isolate_modalities, stg
from ltx_av.ltx_core.transformer import AudioVideoTransformer, StreamInput, velocity_to_x0

import tiny_models

TOLERANCE = 1e-4  # house rule: float32 parity within 1e-4 (measured errors are ~1e-6)


@pytest.fixture(scope="module")
def models(tiny_checkpoints):
    """variant -> (ours, reference), both loaded from the same monolith by their own loaders."""
    return {
        variant: (
            build_component(path, "transformer", AudioVideoTransformer),
            tiny_models.load_reference(path, "transformer"),
        )
        for variant, path in tiny_checkpoints.items()
    }


def _compare(models, variant, case: Case, perturbations: Perturbations | None = None) -> list[float]:
    ours, ref = models[variant]
    batch = (case.video or case.audio).batch
    with torch.no_grad():
        got = ours(case.video, case.audio, perturbations)
        expected = ref(*case.reference(), reference_perturbations(perturbations, batch))
    errors = []
    for g, e in zip(got, expected, strict=True):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.shape == e.shape and g.dtype == torch.float32
            errors.append((g - e).abs().max().item())
            assert errors[-1] <= TOLERANCE, errors
    return errors


def test_module_keys_and_shapes_are_the_reference_keys(models, variant):
    ours, ref = models[variant]
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }


def test_conditioned_forward_matches_reference(models, variant):
    """First latent frame replaced (timestep 0) plus a keyframe group appended at pixel frame 17 (strength 0.8),
    with an attention-strength mask between them and a padded prompt."""
    case = make_case(
        models[variant][0].config,
        batch=2,
        condition_first_frame=True,
        keyframe_at=17,
        keyframe_strength=0.8,
        attention_strength=0.5,
        mask_context=True,
    )
    _compare(models, variant, case)


@pytest.mark.parametrize("kind", ["stg", "isolate", "per_item"])
def test_perturbed_forward_matches_reference(models, variant, kind):
    """STG at one block, A2V+V2A skipped, and a batch mixing plain, STG and isolated items (the guidance batch)."""
    config = models[variant][0].config
    batch = 3 if kind == "per_item" else 1
    case = make_case(config, batch=batch, condition_first_frame=True, keyframe_at=9)
    per_item = {
        "stg": [stg_at(1)],
        "isolate": [isolate_modalities()],
        "per_item": [(), stg([0], audio=False), isolate_modalities()],
    }[kind]
    errors = _compare(models, variant, case, Perturbations.of(per_item))
    # and a perturbation really changes the result
    ours = models[variant][0]
    with torch.no_grad():
        plain = ours(case.video, case.audio)[0]
        perturbed = ours(case.video, case.audio, Perturbations.of(per_item))[0]
    assert (plain - perturbed).abs().max() > 100 * max(errors + [1e-6])


def test_video_only_and_audio_only_match_reference(models, variant):
    config = models[variant][0].config
    _compare(models, variant, make_case(config, audio=False, condition_first_frame=True))
    _compare(models, variant, make_case(config, video=False))


def test_empty_stream_equals_absent_stream(models, variant):
    ours = models[variant][0]
    case = make_case(ours.config, batch=2, sigmas=(0.9, 0.3))
    a = case.audio
    empty = dataclasses.replace(
        a,
        latent=a.latent[:, :0],
        timesteps=a.timesteps[:, :0],
        positions=a.positions[:, :, :0],
    )
    with torch.no_grad():
        only_video, none = ours(case.video, None)
        with_empty, audio_out = ours(case.video, empty)
    assert none is None and audio_out.shape == (2, 0, 128)
    assert torch.equal(only_video, with_empty)


def test_batch_of_two_with_different_sigmas_matches_reference(models, variant):
    config = models[variant][0].config
    case = make_case(config, batch=2, sigmas=(0.95, 0.2), condition_first_frame=True)
    _compare(models, variant, case)
    # each stream at its own sigma: exercises the audio<->video timestep rule
    case = make_case(config, batch=2, sigmas=(0.95, 0.2), audio_sigmas=(0.5, 0.05), keyframe_at=9)
    _compare(models, variant, case)


def test_batch_items_are_independent(models, variant):
    ours = models[variant][0]
    case = make_case(ours.config, batch=2, sigmas=(0.95, 0.2), condition_first_frame=True)
    with torch.no_grad():
        both = ours(case.video, case.audio)
        for i in range(2):
            item = Case(*(_item(s, i) for s in (case.video, case.audio)))
            single = ours(item.video, item.audio)
            for b, s in zip(both, single, strict=True):
                torch.testing.assert_close(b[i : i + 1], s, atol=1e-5, rtol=1e-5)


def _item(s: StreamInput, i: int) -> StreamInput:
    return dataclasses.replace(
        s,
        latent=s.latent[i : i + 1],
        sigma=torch.as_tensor(s.sigma)[i : i + 1],
        timesteps=s.timesteps[i : i + 1],
        positions=s.positions[i : i + 1],
        context=s.context[i : i + 1],
    )


def test_disabled_stream_matches_reference(models, variant):
    case = make_case(models[variant][0].config, condition_first_frame=True)
    _compare(models, variant, Case(case.video, disabled(case.audio)))
    _compare(models, variant, Case(disabled(case.video), case.audio))


def test_timestep_rules_agree_only_without_conditioning(models, variant):
    ours = models[variant][0]
    plain = make_case(ours.config, batch=2, sigmas=(0.8, 0.3))
    conditioned = make_case(ours.config, batch=2, sigmas=(0.8, 0.3), condition_first_frame=True)
    results = {}
    try:
        for rule in ("cross_sigma", "per_token", "per_token_cross_gate"):
            ours.av_timestep_rule = rule
            with torch.no_grad():
                results[rule] = (ours(plain.video, plain.audio)[0], ours(conditioned.video, conditioned.audio)[0])
    finally:
        ours.av_timestep_rule = "cross_sigma"
    base_plain, base_conditioned = results["cross_sigma"]
    for rule in ("per_token", "per_token_cross_gate"):
        torch.testing.assert_close(results[rule][0], base_plain, atol=1e-6, rtol=0)
        assert (results[rule][1] - base_conditioned).abs().max() > 1e-4
    with pytest.raises(InputError, match="av_timestep_rule"):
        ours.av_timestep_rule = "newest"


def test_feed_forward_chunking_changes_nothing(models, variant):
    ours = models[variant][0]
    case = make_case(ours.config, keyframe_at=9)
    with torch.no_grad():
        expected = ours(case.video, case.audio)
        ours.ffn_chunk_tokens = 16
        try:
            got = ours(case.video, case.audio)
        finally:
            ours.ffn_chunk_tokens = None
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-6)


def test_no_attention_mask_is_built_unless_one_is_given(models, variant, monkeypatch):
    from ltx_av.ltx_core import attention

    seen = []
    sdpa = attention.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(None if attn_mask is None else tuple(attn_mask.shape))
        return sdpa(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", spy)
    ours = models[variant][0]
    case = make_case(ours.config, condition_first_frame=True, keyframe_at=9)
    with torch.no_grad():
        ours(case.video, case.audio)
    assert seen and all(s is None for s in seen)


def test_bfloat16_compute_stays_close_to_float32(tiny_checkpoint):
    """Weights and matmuls in bfloat16; residuals, norms, RoPE and modulation in float32."""
    model = build_component(tiny_checkpoint, "transformer", AudioVideoTransformer)
    case = make_case(model.config, batch=2, sigmas=(0.9, 0.4), condition_first_frame=True, keyframe_at=9)
    with torch.no_grad():
        expected = model(case.video, case.audio)
        model.to(torch.bfloat16)
        got = model(case.video, case.audio)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float32
        assert (g - e).abs().max() <= 0.05 * e.std()


def test_velocity_to_x0_is_the_reference_formula():
    from ltx_core.utils import to_denoised

    g = torch.Generator().manual_seed(0)
    latent, velocity = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    t = torch.rand(2, 5, generator=g)
    torch.testing.assert_close(velocity_to_x0(latent, velocity, t), to_denoised(latent, velocity, t[..., None]))
    torch.testing.assert_close(velocity_to_x0(latent, velocity, t[..., None]), latent - velocity * t[..., None])


@pytest.mark.parametrize(
    "field,change,message",
    [
        ("latent", lambda s: s.latent[..., :64], "latent has shape"),
        ("timesteps", lambda s: s.timesteps[:, :-1], "timesteps has shape"),
        ("positions", lambda s: s.positions[:, :1], "positions has shape"),
        ("context", lambda s: s.context[..., :7], "context has shape"),
        ("sigma", lambda s: torch.ones(3), "sigma has shape"),
        ("context_mask", lambda s: torch.ones(2, 1), "context_mask has shape"),
    ],
)
def test_bad_inputs_name_the_field(models, field, change, message):
    ours = models["LTX-2.3"][0]
    case = make_case(ours.config, batch=2)
    bad = dataclasses.replace(case.video, **{field: change(case.video)})
    with pytest.raises(InputError, match=f"video stream: {message}"):
        ours(bad, case.audio)
    with pytest.raises(InputError, match="batch"):
        ours(case.video, _item(case.audio, 0))
    with pytest.raises(InputError, match="both are None"):
        ours(None, None)
    with pytest.raises(InputError, match="perturbations are given for 1"):
        ours(case.video, case.audio, Perturbations.same(1, stg([0])))
    with pytest.raises(InputError, match=r"names blocks \[29\]; the model has blocks 0..1"):
        ours(case.video, case.audio, Perturbations.same(2, stg([29])))
    assert Skip("audio_to_video") is Skip.AUDIO_TO_VIDEO
