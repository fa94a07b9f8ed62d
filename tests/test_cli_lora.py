"""LoRAs on the headless path: ``python -m ltx_av generate --lora / --stage2-lora`` and ``Pipeline``'s LoRAs.

The runs use the built-in tiny model at 64x64 (stage 1 at 32x32 with --two-stage), 9 frames and 1 step, loaded once for the module:
the command line's loader is replaced by one that hands it the module's pipeline with the run's LoRAs set, and the
video and the latents each stage ends with are caught on their way out. The refusals of bad --lora values are in
test_cli.py with every other bad argument."""

from __future__ import annotations

import pytest
import torch

import ltx_av.__main__ as cli
from ltx_av.ltx_core import media, pipeline, tiny
from ltx_av.ltx_core.errors import CheckpointError, InputError

SMALL = [
    "--variant",
    "LTX-2.3",
    "--width",
    "64",
    "--height",
    "64",
    "--frames",
    "9",
    "--steps",
    "1",
    "--threads",
    "1",
    "-q",
]
SMALL_TWO_STAGE = ["--two-stage", "--width", "64", "--height", "64", "--frames", "9", "--steps", "1"]
SMALL_TWO_STAGE += ["--threads", "1", "-q"]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """The built-in model (LTX-2.3 stand-in with its tiny upsampler) loaded once, and stand-in LoRAs for it: the
    distilled one make-tiny-models writes and a second one of other values for the attention layers only."""
    folder = tmp_path_factory.mktemp("cli_lora")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models are all overhead; one thread is as fast and immune to busy neighbours
    try:
        pipe = pipeline.tiny_pipeline(str(folder), upsampler=True)
    finally:
        torch.set_num_threads(before)
    distilled = tiny.write_tiny_lora(str(folder / "ltx-2.3-22b-distilled-lora-384.safetensors"), "lora-distilled-2.3")
    style = tiny.write_tiny_lora(str(folder / "style.safetensors"), "lora-ic-union-2.3", seed=3)
    return pipe, distilled, style


class Run:
    def __init__(self):
        self.frames = self.waveform = None
        self.stages: list[tuple[object, torch.Tensor, torch.Tensor]] = []  # (model, video, audio) per stage


@pytest.fixture
def generate(stand_ins, tmp_path, monkeypatch):
    """``generate(*flags)``: run ``python -m ltx_av generate`` in-process on the module's pipeline; returns a
    :class:`Run` with the frames and waveform it would write and each stage's model and resulting latents."""
    pipe = stand_ins[0]
    run = None

    def loaded(folder, variant, *, device, offload, upsampler, loras, stage2_loras):
        assert variant == "LTX-2.3" and device == "cpu"
        pipe.set_loras(loras, stage2_loras)
        return pipe

    real_sample = pipeline.sample

    def sample(model, *args, **kwargs):
        video, audio = real_sample(model, *args, **kwargs)
        run.stages.append((model, video, audio))
        return video, audio

    def write_mp4(path, frames, frame_rate, waveform, sample_rate):
        run.frames, run.waveform = frames, waveform

    monkeypatch.setattr(pipeline, "tiny_pipeline", loaded)
    monkeypatch.setattr(pipeline, "sample", sample)
    monkeypatch.setattr(media, "write_mp4", write_mp4)

    def go(*flags: str) -> Run:
        nonlocal run
        run = Run()
        cli.main(["generate", *flags, "--output", str(tmp_path / "clip.mp4")])
        return run

    yield go
    pipe.set_loras()


def test_a_lora_changes_the_video_and_its_sound_by_its_strength_and_zero_changes_nothing(stand_ins, generate):
    pipe, distilled, style = stand_ins
    base = generate(*SMALL)
    full = generate(*SMALL, "--lora", distilled)
    off = generate(*SMALL, "--lora", f"{distilled}:0")
    assert base.stages[0][0] is pipe.transformer  # no LoRA: the transformer itself, as before LoRAs existed
    assert full.stages[0][0] is not pipe.transformer
    # the stand-in adapts every attention and feed-forward of both streams
    assert (full.frames.float() - base.frames.float()).abs().mean() > 0.5
    assert (full.waveform - base.waveform).abs().max() > 1e-4
    # at strength 0 the LoRA is left out entirely: bit for bit the run without it
    assert off.stages[0][0] is pipe.transformer
    assert torch.equal(off.frames, base.frames) and torch.equal(off.waveform, base.waveform)

    def change(run: Run) -> float:
        return (run.stages[0][1] - base.stages[0][1]).abs().mean().item()

    half = generate(*SMALL, "--lora", f"{distilled}:0.5")
    assert 0 < change(half) < change(full)
    # two LoRAs add up (W + B1 A1 + c B2 A2): neither LoRA alone
    both = generate(*SMALL, "--lora", distilled, "--lora", f"{style}:0.7")
    assert (both.stages[0][1] - full.stages[0][1]).abs().mean() > 1e-3


def test_a_stage2_lora_changes_stage_2_only(stand_ins, generate):
    """The dev recipe: stage 1 without the distilled LoRA (its latents are those of a run without LoRAs, bit for
    bit), stage 2 with it; a --lora changes both stages, and stage 2 gets it plus the --stage2-lora."""
    pipe, distilled, style = stand_ins
    base = generate(*SMALL_TWO_STAGE)
    dev = generate(*SMALL_TWO_STAGE, "--stage2-lora", distilled)
    assert len(base.stages) == len(dev.stages) == 2
    assert dev.stages[0][0] is pipe.transformer
    assert torch.equal(dev.stages[0][1], base.stages[0][1]) and torch.equal(dev.stages[0][2], base.stages[0][2])
    assert (dev.stages[1][1] - base.stages[1][1]).abs().mean() > 1e-3
    assert (dev.frames.float() - base.frames.float()).abs().mean() > 0.5
    assert (dev.stages[1][2] - base.stages[1][2]).abs().mean() > 1e-4  # stage 2 refines the audio too

    every = generate(*SMALL_TWO_STAGE, "--lora", style)
    assert (every.stages[0][1] - base.stages[0][1]).abs().mean() > 1e-3
    stacked = generate(*SMALL_TWO_STAGE, "--lora", style, "--stage2-lora", distilled)
    assert torch.equal(stacked.stages[0][1], every.stages[0][1])  # stage 1: the --lora only
    for other in (every, dev):  # stage 2: both LoRAs, neither alone
        assert (stacked.stages[1][1] - other.stages[1][1]).abs().mean() > 1e-3


def test_the_lora_is_applied_as_the_model_runs_and_the_weights_stay_as_loaded(stand_ins, generate, capsys):
    """A pipeline given its LoRAs after loading (set_loras, as the module's shared pipeline is) leaves its weights
    alone; Pipeline.load fuses its ``loras`` instead (test_lora_fuse.py)."""
    pipe, distilled, _ = stand_ins
    weights = {name: p.detach().clone() for name, p in pipe.transformer.named_parameters()}
    loud = [flag for flag in SMALL_TWO_STAGE if flag != "-q"]  # the log lines say which LoRAs run where
    generate(*loud, "--lora", f"{distilled}:0.8", "--stage2-lora", distilled)
    assert all(torch.equal(p, weights[name]) for name, p in pipe.transformer.named_parameters())
    err = capsys.readouterr().err
    assert "LoRA 'ltx-2.3-22b-distilled-lora-384.safetensors' (rank 4) at strength 0.8 on the LTX-2.3" in err
    assert "stage 2 adds LoRA 'ltx-2.3-22b-distilled-lora-384.safetensors' at 1" in err


def test_pipeline_loras_are_checked_before_any_factor_is_read_and_a_refusal_changes_nothing(stand_ins, tmp_path):
    pipe, distilled, style = stand_ins
    other = tiny.write_tiny_lora(str(tmp_path / "ltx-2-19b-distilled-lora-384.safetensors"), "lora-distilled-2")
    pipe.set_loras([(style, 0.5)])
    kept = pipe.loras
    try:
        with pytest.raises(InputError, match=r"stage2_loras\[0\] strength must be between -10 and 10; got 12"):
            pipe.set_loras([(distilled, 1.0)], [(distilled, 12)])
        with pytest.raises(CheckpointError, match="does not fit this LTX-2.3 transformer"):
            pipe.set_loras([(distilled, 1.0), (other, 1.0)])
        with pytest.raises(InputError, match=r"loras\[0\] must be a \(path, strength\) pair"):
            pipe.set_loras([distilled])
        with pytest.raises(InputError, match="loras must be a list of"):
            pipe.set_loras(distilled)
        assert pipe.loras is kept and pipe.stage2_loras == ()
    finally:
        pipe.set_loras()


def test_a_checkpoint_run_loads_its_loras_with_the_pipeline(tmp_path, monkeypatch):
    """--checkpoint: the LoRAs go through Pipeline.load (headers checked against the transformer on the meta
    device, then bound to the loaded one), here with a small LTX-2 checkpoint and a LoRA for it; a LoRA for the
    other version given to Pipeline.load fails before anything loads."""
    import tiny_loras
    from safetensors.torch import save_file

    checkpoint = tiny.write_tiny_checkpoint(str(tmp_path / "ltx-2.safetensors"), "LTX-2")
    gemma = tiny.write_tiny_gemma(str(tmp_path / "gemma"))
    camera = str(tmp_path / "camera.safetensors")
    tiny_loras.write_lora(camera, "LTX-2", "attention")
    gated = {"diffusion_model.transformer_blocks.0.attn1.to_gate_logits.lora_A.weight": torch.zeros(2, 64)}
    gated["diffusion_model.transformer_blocks.0.attn1.to_gate_logits.lora_B.weight"] = torch.zeros(4, 2)
    save_file(gated, str(tmp_path / "gated.safetensors"))

    def trap(*args, **kwargs):
        raise AssertionError("Gemma was loaded before the LoRAs were checked")

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "load_gemma", trap)
        with pytest.raises(CheckpointError, match=r"made for LTX-2.3 \(only LTX-2.3 has 'to_gate_logits'"):
            pipeline.Pipeline.load(checkpoint, gemma, device="cpu", stage2_loras=[(tmp_path / "gated.safetensors", 1)])

    loaded, written = [], []
    real_load = pipeline.Pipeline.load

    def load(*args, **kwargs):
        loaded.append(real_load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(pipeline.Pipeline, "load", load)
    monkeypatch.setattr(media, "write_mp4", lambda path, frames, *rest: written.append(frames))
    real = ["--checkpoint", checkpoint, "--gemma", gemma, "--device", "cpu", "--output", str(tmp_path / "a.mp4")]
    # the small checkpoint has 2 blocks, too few for the official guidance's STG block: no guidance
    small = ["--width", "64", "--height", "64", "--frames", "9", "--schedule", "distilled", "--threads", "1", "-q"]
    cli.main(["generate", *real, *small, "--negative-prompt", "noise", "--lora", f"{camera}:0.5"])
    assert [(a.name, a.strength) for a in loaded[0].loras] == [("camera.safetensors", 0.5)]
    assert loaded[0].fused_loras == loaded[0].loras  # Pipeline.load owns the transformer: --lora is fused into it
    assert not loaded[0].stage2_loras and written[0].shape == (9, 64, 64, 3)


@pytest.mark.parametrize("variant", ["LTX-2", "LTX-2.3"])
def test_the_shapes_loras_are_checked_against_before_loading_are_the_models(variant):
    """transformer_shapes builds one block and repeats it; the whole model on the meta device has the same."""
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.lora import LinearShapes
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    config = TransformerConfig.from_dict(tiny.tiny_config(variant, stand_in=True)["transformer"])
    with torch.device("meta"):
        whole = LinearShapes.of(AudioVideoTransformer(config))
    assert pipeline.transformer_shapes(config) == whole and whole.blocks == tiny.STAND_IN_LAYERS[variant]
