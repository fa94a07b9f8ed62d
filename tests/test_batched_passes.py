"""A step's guidance passes as one forward (sampling.denoise(batch_passes=...)): the same result as one forward
per pass, and when the loop chooses it."""

from __future__ import annotations

import pytest
import torch

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.conditioning import FrameCondition, KeyframeCondition
from ltx_av.ltx_core.guidance import GuidanceParams
from ltx_av.ltx_core.perturbations import Skip
from ltx_av.ltx_core.sampling import choose_batched_passes, plan_passes, sample
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.transformer import AudioVideoTransformer

FPS = 24.0
FULL_VIDEO = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), modality=3.0, rescale=0.7)
FULL_AUDIO = GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=(0,), modality=3.0, rescale=0.7)


def _contexts(config, seed: int, tokens: int = 6) -> TextContexts:
    g = torch.Generator().manual_seed(seed)
    v1 = config.text_path_version == 1
    dv = config.caption_channels if v1 else config.video_dim
    da = config.caption_channels if v1 else config.audio_dim
    return TextContexts(torch.randn(1, tokens, dv, generator=g), torch.randn(1, tokens, da, generator=g))


class Counting:
    """The model, counting its forwards and the batch each one saw."""

    def __init__(self, model):
        self.model, self.config, self.batches = model, model.config, []

    def __call__(self, video, audio, perturbations):
        self.batches.append(video.latent.shape[0])
        return self.model(video, audio, perturbations)


def _sample(model, batch_passes, batch=1, negative_tokens=6):
    config = model.config
    g = torch.Generator().manual_seed(3)
    first, key = torch.randn(batch, 128, 1, 2, 3, generator=g), torch.randn(batch, 128, 1, 2, 3, generator=g)
    return sample(
        model,
        torch.zeros(batch, 128, 3, 2, 3),
        frame_rate=FPS,
        positive=_contexts(config, 1),
        negative=_contexts(config, 2, negative_tokens),
        sigmas=[1.0, 0.7, 0.4, 0.0],
        seed=7,
        video_guidance=FULL_VIDEO,
        audio_guidance=FULL_AUDIO,
        audio_latent=torch.zeros(batch, 8, 18, 16),
        conditions=[FrameCondition(first, 0.95, 0), KeyframeCondition(key, 9, 0.8)],
        batch_passes=batch_passes,
    )


@pytest.mark.parametrize("batch", [1, 2])
def test_batched_passes_give_the_sequential_result(tiny_checkpoint, batch):
    """CFG + STG (different blocks per stream) + modality + rescale on both streams, a conditioned first frame and
    a keyframe: one forward of 4 x batch items per step == 4 forwards of batch items."""
    model = Counting(build_component(tiny_checkpoint, "transformer", AudioVideoTransformer))
    sequential = _sample(model, False, batch)
    assert model.batches == [batch] * 12
    model.batches.clear()
    batched = _sample(model, True, batch)
    assert model.batches == [4 * batch] * 3
    for s, b in zip(sequential, batched, strict=True):
        assert (s - b).abs().max() <= 1e-5 * s.abs().max()


def test_the_loop_batches_only_when_it_can(tiny_checkpoints):
    model = Counting(build_component(tiny_checkpoints["LTX-2.3"], "transformer", AudioVideoTransformer))
    _sample(model, None)  # auto on the CPU: one forward per pass
    assert model.batches == [1] * 12
    model.batches.clear()
    _sample(model, True, negative_tokens=4)  # prompts of different lengths do not stack
    assert model.batches == [1] * 12


class Stub:
    """Velocity = latent / 2; has a config (so passes may be batched) and records every call."""

    config = object()

    def __init__(self):
        self.calls = []

    def __call__(self, video, audio, perturbations):
        self.calls.append((video, audio, perturbations))
        return video.latent / 2, audio.latent / 2


def test_a_batched_forward_stacks_the_passes_in_order():
    model = Stub()
    positive = TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32))
    negative = TextContexts(torch.ones(1, 3, 32), torch.ones(1, 3, 32))
    events = []
    sample(
        model,
        torch.zeros(1, 128, 2, 1, 2),
        frame_rate=FPS,
        positive=positive,
        negative=negative,
        sigmas=[1.0, 0.5, 0.0],
        video_guidance=FULL_VIDEO,
        audio_guidance=FULL_AUDIO,
        audio_latent=torch.randn(1, 8, 5, 16),
        callback=events.append,
        batch_passes=True,
    )
    assert len(model.calls) == 2
    video, audio, perturbations = model.calls[0]
    passes = plan_passes(FULL_VIDEO, FULL_AUDIO)
    assert [p.kind for p in passes] == ["cond", "uncond", "perturbed", "isolated"]
    assert video.latent.shape[0] == audio.latent.shape[0] == 4
    assert [bool(c.sum() > 0) for c in video.context] == [False, True, False, False]
    assert [set(p.skip for p in item) for item in perturbations.per_item] == [
        set(),
        set(),
        {Skip.VIDEO_SELF_ATTENTION, Skip.AUDIO_SELF_ATTENTION},
        {Skip.AUDIO_TO_VIDEO, Skip.VIDEO_TO_AUDIO},
    ]
    assert torch.equal(video.sigma, torch.ones(4))
    # one progress event per step: the forward count jumps by the passes
    assert [e.forwards for e in events] == [4, 8]


def test_no_batching_without_a_config_or_with_one_pass():
    class Bare:
        pass

    contexts = TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32))
    passes = plan_passes(FULL_VIDEO, FULL_AUDIO)
    assert not choose_batched_passes(Bare(), passes, None, None, contexts, contexts, True)
    assert not choose_batched_passes(Stub(), passes[:1], None, None, contexts, contexts, True)
    assert choose_batched_passes(Stub(), passes, None, None, contexts, contexts, True)


def test_auto_batches_on_cuda_when_the_memory_is_free(tiny_checkpoints, monkeypatch):
    """The auto rule without a GPU: a stand-in CUDA state and free-memory figure either side of the estimate."""
    from types import SimpleNamespace

    from ltx_av.ltx_core import sampling

    model = build_component(tiny_checkpoints["LTX-2.3"], "transformer", AudioVideoTransformer)
    contexts = _contexts(model.config, 1)
    passes = plan_passes(FULL_VIDEO, FULL_AUDIO)
    video = SimpleNamespace(latent=SimpleNamespace(device=torch.device("cuda"), shape=(2, 600, 128)))
    audio = SimpleNamespace(latent=SimpleNamespace(device=torch.device("cuda"), shape=(2, 40, 128)))
    need = sampling.working_bytes(model.config, 600, 40, 2 * len(passes), model.compute_dtype)
    monkeypatch.setattr(sampling, "_free_bytes", lambda device: int(sampling.BATCHED_HEADROOM * need))
    assert choose_batched_passes(model, passes, video, audio, contexts, contexts)
    monkeypatch.setattr(sampling, "_free_bytes", lambda device: int(sampling.BATCHED_HEADROOM * need) - 1)
    assert not choose_batched_passes(model, passes, video, audio, contexts, contexts)
    assert choose_batched_passes(model, passes, video, audio, contexts, contexts, True)  # forced
