"""train-demo: the training paths of the VAEs and the vocoder compute what inference computes, a few steps of
every stage give an official-layout checkpoint the pipeline loads, and a resumed run is the uninterrupted one."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ltx_av.ltx_core import demo_train

FEW = {
    "video_vae": 1,
    "audio_vae": 1,
    "vocoder": 1,
    "video_clips": 1,
    "latents": 1,
    "transformer": 2,
    "pure_noise": 2,
    "settle": 1,
}


@pytest.fixture(scope="module")
def models():
    return demo_train.build_models(1)


def test_training_paths_compute_what_inference_computes(models, one_thread):
    """Autograd-safe steps replace the in-place, Winograd and cached-kernel paths while weights require grad; the
    weights trained through them must behave the same at inference."""
    g = torch.Generator().manual_seed(0)
    pixels, _ = demo_train.video_batch(g, 1, 9)
    vae = models["video_vae"]
    mel = models["audio_vae"].waveform_to_mel(demo_train.audio_batch(g, 1, 0.2), 16000)[:, :, :17]
    with torch.no_grad():
        expected = vae.decoder(vae.encoder(pixels), None)
        audio_expected = models["audio_vae"].decoder(models["audio_vae"].encoder(mel))
        wave_expected = models["vocoder"](mel)
    for module in models.values():
        module.requires_grad_(True)
    try:
        decoded = vae.decoder(vae.encoder(pixels), None)
        audio = models["audio_vae"].decoder(models["audio_vae"].encoder(mel))
        wave = models["vocoder"](mel)
        assert decoded.requires_grad and audio.requires_grad and wave.requires_grad
        assert (decoded - expected).abs().max() < 1e-4
        assert (audio - audio_expected).abs().max() < 1e-4
        assert (wave - wave_expected).abs().max() < 1e-3  # six upsampling stages of float32 sums in another order
        (decoded.square().mean() + audio.square().mean() + wave.square().mean()).backward()
        snake = models["vocoder"].vocoder.resblocks[0].acts1[0].act.alpha
        level = next(level for level in models["audio_vae"].decoder.up if hasattr(level, "upsample"))
        upsample = level.upsample.conv.conv.weight
        assert snake.grad is not None and upsample.grad is not None and float(upsample.grad.abs().sum()) > 0
    finally:
        for module in models.values():
            module.requires_grad_(False)
            module.zero_grad(set_to_none=True)


def test_the_vocoder_also_learns_from_overdone_latents(models, one_thread, monkeypatch):
    """Half of a vocoder batch (the odd pieces: one with a click, one without) is the audio VAE's decode of the
    piece's latent with its changes over time scaled by 1 to VOCODER_EXAGGERATION; the rest is the world's mel."""
    assert demo_train.VOCODER_EXAGGERATION > 1
    vae = models["audio_vae"]
    waveform = demo_train.audio_batch(torch.Generator().manual_seed(0), 4, 0.3, clicks=2)
    mel = vae.waveform_to_mel(waveform, 16000)
    with torch.no_grad():
        z = vae.encoder(demo_train._whole_latents(mel[1::2]))
        plain = vae.decoder(z)[:, :, :24, : mel.shape[3]]
        monkeypatch.setattr(demo_train, "VOCODER_EXAGGERATION", 1.0)
        same = demo_train._exaggerate_some(vae, mel, torch.Generator().manual_seed(1), 24)
        monkeypatch.setattr(demo_train, "VOCODER_EXAGGERATION", 3.0)
        overdone = demo_train._exaggerate_some(vae, mel, torch.Generator().manual_seed(1), 24)
    assert same.shape == overdone.shape == (4, 2, 24, mel.shape[3])
    assert torch.equal(same[0::2], mel[0::2, :, :24]) and torch.equal(overdone[0::2], mel[0::2, :, :24])
    assert torch.allclose(same[1::2], plain, atol=1e-5)
    assert float((overdone[1::2] - plain).abs().max()) > 1e-3


def test_video_batches_can_ask_for_bouncing_clips():
    """The video_clips stage sees more bounces than the world draws: ``bouncing`` is the chance of a bouncing clip,
    the rest move; the pieces are whole clips the measure reads as such."""
    from ltx_av.ltx_core import demo_measure as measure

    def motions(share: float, seed: int) -> list[str]:
        pixels, _ = demo_train.video_batch(torch.Generator().manual_seed(seed), 4, 49, crop=None, bouncing=share)
        frames = ((pixels.permute(0, 2, 3, 4, 1) + 1) * 127.5).round().to(torch.uint8)
        return [measure.motion_direction(measure.centroid_track(f)) for f in frames]

    assert motions(1.0, 0) == ["bounces"] * 4
    assert all(m is not None and m != "bounces" for m in motions(0.0, 1))
    assert set(motions(0.5, 2) + motions(0.5, 3)) >= {"bounces"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same few steps trained three times: in one go, stopped after the vocoder then resumed (the transformer
    stage saving after every step), and with the audio stages in a second process."""
    folder = tmp_path_factory.mktemp("demo_train")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = demo_train.train_demo(str(folder / "whole"), steps=FEW, statistics_clips=1)
        stopped = demo_train.train_demo(str(folder / "parts"), steps=FEW, statistics_clips=1, stop_after="vocoder")
        parts = demo_train.train_demo(str(folder / "parts"), steps=FEW, statistics_clips=1, save_seconds=0.0)
        split = demo_train.train_demo(str(folder / "split"), steps=FEW, statistics_clips=1, processes=2)
    finally:
        torch.set_num_threads(before)
    return whole, stopped, parts, split


def test_a_resumed_run_and_a_run_in_two_processes_are_the_uninterrupted_run(runs):
    whole, stopped, parts, split = runs
    assert stopped is None
    a = load_file(whole)
    for other in (parts, split):
        b = load_file(other)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    helper = torch.load(os.path.join(os.path.dirname(split), demo_train.HELPER, demo_train.CHECKPOINT))
    assert (helper["stage"], helper["step"]) == ("vocoder", FEW["vocoder"])


def test_a_few_steps_of_every_stage_make_a_model_the_pipeline_runs(runs, one_thread):
    from ltx_av.ltx_core.pipeline import Pipeline

    path = runs[0]
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["config"]) == demo_train.demo_config() and metadata["model_version"] == "2.3.0"
    note = json.loads(metadata[demo_train.DEMO_KEY])
    assert note["steps"]["transformer"] == FEW["transformer"] and set(note["seconds"]) == set(demo_train.STAGES)
    assert note["threads"] == {stage: [1] for stage in demo_train.STAGES}  # what a bit-for-bit rerun needs
    gemma = os.path.join(os.path.dirname(path), demo_train.GEMMA)
    pipe = Pipeline.load(path, gemma, device="cpu", dtype=torch.float32)
    video, audio = pipe.guidance("ltx2")  # the release's STG block 28 does not exist: the last one stands in
    assert video.stg_blocks == (demo_train.DEMO_LAYERS - 1,) and audio.stg_blocks == (demo_train.DEMO_LAYERS - 1,)
    result = pipe.generate("a red ball moves left, low hum", width=64, height=64, frames=9, steps=2)
    assert tuple(result.frames.shape) == (9, 64, 64, 3) and result.waveform.shape[0] == 2


def test_a_stage_resumed_on_another_thread_count_says_so(caplog):
    state = demo_train.TrainState("video_vae", 5, {}, None, {}, {}, {"video_vae": [1]})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with caplog.at_level("WARNING", logger="ltx_av.demo"):
            demo_train._note_threads(state, "video_vae")
        assert not caplog.records
        torch.set_num_threads(2)
        with caplog.at_level("WARNING", logger="ltx_av.demo"):
            demo_train._note_threads(state, "video_vae")
    finally:
        torch.set_num_threads(before)
    assert state.threads["video_vae"] == [1, 2]
    assert "--threads 1" in caplog.text and "video_vae started on 1" in caplog.text


def test_unknown_stages_are_refused(tmp_path):
    from ltx_av.ltx_core.errors import InputError

    with pytest.raises(InputError, match="steps names unknown stages \\['vae'\\]"):
        demo_train.train_demo(str(tmp_path), steps={"vae": 3})


def test_the_command_line_offers_every_stage_to_stop_after():
    """--stop-after lists its choices for --help without importing torch, so it keeps its own copy of STAGES."""
    from ltx_av.__main__ import build_parser

    for stage in demo_train.STAGES:
        assert build_parser().parse_args(["train-demo", "--stop-after", stage]).stop_after == stage


def test_the_command_line_refuses_bad_steps_before_any_work(tmp_path, capsys):
    from ltx_av.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train-demo", "--work", str(tmp_path / "w"), "--steps", "transformer=0"])
    assert exit_info.value.code == 2
    assert "--steps: 'transformer=0': expected STAGE=N with N >= 1" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_the_pure_noise_stage_trains_the_first_guess_from_text_alone():
    """Every sample of a pure_noise step is at sigma 1 on every video and audio token, no first frame given; the
    transformer stage's samples spread over the noise levels and give some first frames."""
    from ltx_av.ltx_core.pipeline import TINY_NEGATIVE_PROMPT
    from ltx_av.ltx_core.text_encoder import TextContexts

    captions = ["a red ball moves left, low hum", TINY_NEGATIVE_PROMPT, "a red moves left, low hum"]
    dataset = {"video": [torch.randn(128, 3, 2, 2)], "audio": [torch.randn(8, 5, 16)], "captions": captions[:1]}
    read = []

    class Cache(dict):  # the prompts each step reads
        def __getitem__(self, caption):
            read.append(caption)
            return super().__getitem__(caption)

    cache = Cache({c: TextContexts(torch.zeros(1, 4, 8), torch.zeros(1, 4, 8)) for c in captions})
    seen = []

    def transformer(video, audio, perturbations):
        seen.append((video.timesteps.clone(), audio.timesteps.clone()))
        return torch.zeros_like(video.latent), torch.zeros_like(audio.latent)

    models = {"transformer": transformer}
    for step in range(8):
        g = torch.Generator().manual_seed(step)
        demo_train._transformer_step(models, g, dataset, None, cache, pure_noise=True)
    assert all(bool((v == 1).all() and (a == 1).all()) for v, a in seen)
    seen.clear()
    for step in range(8):
        demo_train._transformer_step(models, torch.Generator().manual_seed(step), dataset, None, cache)
    video = torch.cat([v for v, _ in seen])
    assert float(video.max()) < 1 or bool((video == 0).any())
    # both stages: the caption whole, now and then without its shape word (the colour must come from the colour
    # word), and now and then the negative prompt
    assert set(read) == set(captions)
    assert read.count(captions[0]) > read.count(captions[2]) > 0


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the helper's state from /proc")
def test_the_second_process_stops_when_train_demo_is_killed(tmp_path):
    """A parent killed outright runs no cleanup: the audio helper must notice and leave rather than train on alone."""
    import re
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "ltx_av", "train-demo", "--work", str(tmp_path), "--processes", "2"]
    parent = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        pid = None
        for line in parent.stderr:  # "... in a second process (pid N) ..." once the helper runs
            found = re.search(r"second process \(pid (\d+)\)", line)
            if found:
                pid = int(found.group(1))
                break
        assert pid is not None, "train-demo never started its second process"
        time.sleep(2)  # the helper is importing and starting to train
    finally:
        parent.kill()  # SIGKILL: no cleanup runs in train-demo
        parent.wait()

    def running() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has left; nobody reaps it here
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 30
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = running()
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the second process went on training after train-demo was killed"
