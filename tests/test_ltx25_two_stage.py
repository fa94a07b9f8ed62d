"""LTX-2.5 in two stages through the nodes, on the stand-ins make-tiny-models writes for it: the 2.5 spatial x2
upsampler loads through Load Latent Upsampler and upsamples a latent made with the 2.5 VAE, the 2.5 distilled LoRA
binds to the 2.5 transformer, and stage 2 refines the upsampled latent. Upsampler files name no release (only their
architecture), so LTX-2.3's x2 works with a 2.5 VAE as well; the release record of the latent passes through the
upsample, so the 2.5 sampler still refuses a latent of another release by name."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from ltx_av.ltx_core import tiny
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.lora import bind_lora, read_lora
from ltx_av.nodes.lora import LTXLoraLoader
from ltx_av.nodes.model import LTXModelLoader
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXImageCondition, LTXSampler
from ltx_av.nodes.text import LTXTextEncode, LTXTextEncoderLoader
from ltx_av.nodes.upsample import LTXLatentUpsample, LTXUpsamplerLoader
from ltx_av.nodes.validation import RELEASE_KEY
from ltx_av.nodes.video import LTXLoadVideoVAE

UPSAMPLER_25 = "latent_upscale_models/ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"
UPSAMPLER_23 = "latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
LORA_25 = "loras/ltx-2.5-22b-distilled-lora-450-bf16.safetensors"
FILES = {part: os.path.basename(path) for part, path in tiny.LTX25_FILES.items()}


def test_make_tiny_models_names_the_25_upsampler_and_distilled_lora():
    assert tiny.TINY_MODEL_FILES[UPSAMPLER_25] == "spatial-x2"  # 2.3's architecture: mid 1024, pixel shuffle
    assert tiny.TINY_MODEL_FILES[LORA_25] == "lora-distilled-2.5"
    assert tiny.TINY_LORA_KINDS["lora-distilled-2.5"] == ("LTX-2.5", "all", {})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The 2.5 split files, both spatial x2 upsamplers and the 2.5 distilled LoRA, as make-tiny-models writes them."""
    folder = tmp_path_factory.mktemp("ltx25_two_stage") / "models"
    tiny.write_tiny_ltx25(str(folder), seed=0, stand_in=True)
    for name in (UPSAMPLER_25, UPSAMPLER_23):
        tiny.write_tiny_upsampler(str(folder / name), tiny.TINY_MODEL_FILES[name], stand_in=True)
    tiny.write_tiny_lora(str(folder / LORA_25), tiny.TINY_MODEL_FILES[LORA_25])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTX_AV_MODELS_DIR", str(folder))
        yield folder


def test_the_25_distilled_lora_fits_the_25_transformer_and_no_other(models, caplog):
    model = LTXModelLoader().load(FILES["transformer"], "auto", "none")[0]
    assert model.variant == "LTX-2.5"
    lora = read_lora(str(models / LORA_25))
    assert tiny.STAND_IN_KEY in lora.metadata and os.path.getsize(models / LORA_25) < 2**20
    with caplog.at_level(logging.INFO, logger="ltx_av.lora"):
        applied = bind_lora(lora, model.model, "LTX-2.5")
    # every attention and both feed-forwards in every block, and its name says 2.5: no "made for" warning
    blocks = model.config.num_layers
    assert len(applied.factors) == blocks * len(tiny.LORA_TARGETS["all"]) and not applied.left_out
    assert "seems to be made for" not in caplog.text


def _latent(vae):
    """A first-frame-conditioned 2.5 latent (64x64, 9 frames) and its audio latent."""
    video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    return LTXImageCondition().condition(vae, image, video, 0, 1.0)[0], audio


def test_the_25_upsampler_loads_and_upsamples_a_25_latent(models):
    upsampler = LTXUpsamplerLoader().load(os.path.basename(UPSAMPLER_25), "fp32")[0]
    assert upsampler.kind == "spatial x2" and not upsampler.config.rational_resampler
    assert os.path.basename(UPSAMPLER_25) in LTXUpsamplerLoader.INPUT_TYPES()["required"]["upsampler_name"][0]
    vae = LTXLoadVideoVAE().load(FILES["video_vae"])[0]
    latent, audio = _latent(vae)
    assert latent[RELEASE_KEY]["releases"] == ["LTX-2.5"]
    video, audio_out = LTXLatentUpsample().upsample(latent, upsampler, vae, audio)
    assert tuple(video["samples"].shape) == (1, 128, 2, 4, 4) and bool(video["samples"].isfinite().all())
    assert video[RELEASE_KEY] == latent[RELEASE_KEY] and audio_out is not None
    assert not video.get("ltx_conditions")  # the half-size condition is dropped, to be applied again at full size
    # LTX-2.3's x2 file names no release either: with the 2.5 VAE it is accepted (the stand-ins share weights)
    other = LTXUpsamplerLoader().load(os.path.basename(UPSAMPLER_23), "fp32")[0]
    again = LTXLatentUpsample().upsample(latent, other, vae, audio)[0]
    assert torch.equal(again["samples"], video["samples"])
    # a latent another release's files made: its statistics are not this VAE's, refused naming both files
    stale = {**latent, RELEASE_KEY: {"releases": ["LTX-2.3"], "file": "ltx-2.3-22b-dev.safetensors"}}
    with pytest.raises(InputError, match=r"LTXLatentUpsample: video_latent .*ltx-2\.3-22b-dev\.safetensors.*LTX-2\.5"):
        LTXLatentUpsample().upsample(stale, upsampler, vae, audio)


def test_stage_2_refines_the_upsampled_25_latent_with_the_distilled_lora(models, one_thread):
    """The two-stage chain at 64x64 -> 128x128: stage 1 guided (2 steps), upsample, the first frame again at full
    size, stage 2 with the distilled LoRA on the stage-2 schedule; a latent recorded as LTX-2.3's is refused."""
    model = LTXModelLoader().load(FILES["transformer"], "auto", "none")[0]
    encoder = LTXTextEncoderLoader().load(FILES["text_encoder"], FILES["transformer"], dtype="float32")[0]
    positive = LTXTextEncode().encode(encoder, "a bird")[0]
    negative = LTXTextEncode().encode(encoder, "blurry")[0]
    vae = LTXLoadVideoVAE().load(FILES["video_vae_conv"])[0]
    upsampler = LTXUpsamplerLoader().load(os.path.basename(UPSAMPLER_25), "fp32")[0]
    latent, audio = _latent(vae)
    video, audio = LTXSampler().run(model, positive, latent, 1, steps=2, negative=negative, audio_latent=audio)
    video, audio = LTXLatentUpsample().upsample(video, upsampler, vae, audio)
    image = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))
    video = LTXImageCondition().condition(vae, image, video, 0, 1.0)[0]
    refiner = LTXLoraLoader().load(model, os.path.basename(LORA_25), 1.0)[0]
    out, out_audio = LTXSampler().run(
        refiner, positive, video, 1, schedule="stage2", audio_latent=audio, audio_mode="generate"
    )
    assert tuple(out["samples"].shape) == (1, 128, 2, 4, 4) and bool(out["samples"].isfinite().all())
    assert out[RELEASE_KEY]["releases"] == ["LTX-2.5"] and out_audio is not None
    plain = LTXSampler().run(model, positive, video, 1, schedule="stage2", audio_latent=audio, audio_mode="generate")
    assert not torch.equal(plain[0]["samples"], out["samples"])  # the LoRA changes stage 2
    stale = {**video, RELEASE_KEY: {"releases": ["LTX-2.3"], "file": "ltx-2.3-22b-dev.safetensors"}}
    with pytest.raises(InputError, match=r"ltx-2\.3-22b-dev\.safetensors.*LTX-2\.3.*LTX-2\.5"):
        LTXSampler().run(refiner, positive, stale, 1, schedule="stage2", audio_latent=audio)
