"""Sampling on several processes (ltx_core/parallel.py): 2 and 4 gloo processes on the CPU give the one-process
latents, for sequence parallelism (Ulysses, and the key/value all-gather when the heads do not split), guidance
parallelism and both at once, with an image condition, a keyframe and a partly kept audio latent."""

from __future__ import annotations

import os
import subprocess
import sys

import parallel_worker as worker
import pytest
import torch

from ltx_av.ltx_core import parallel
from ltx_av.ltx_core.errors import InputError

HERE = os.path.dirname(os.path.abspath(__file__))


def _launch(world: int, folder: str) -> tuple[list[subprocess.Popen], str]:
    out = os.path.join(folder, f"world{world}.pt")
    rendezvous = os.path.join(folder, f"rendezvous{world}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = os.path.join(HERE, "parallel_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(rank), str(world), rendezvous, out],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(world)
    ]
    return procs, out


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            output, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, output.decode(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """All the module's process groups, started at once (each process uses one thread): the sampling workers of
    each world size, and the command line under torchrun with 2 processes writing into a folder of its own."""
    folder = str(tmp_path_factory.mktemp("parallel"))
    workers = {world: _launch(world, folder) for world in worker.MESHES}
    cli_folder = tmp_path_factory.mktemp("torchrun")
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "ltx_av", "generate", "--frames", "9"]
    command += ["--width", "64", "--height", "64", "--steps", "2", "--guidance-parallel", "1", "--output", "clip.mp4"]
    cli = subprocess.Popen(command, cwd=cli_folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for procs, _ in workers.values():
        _wait(procs)
    stdout, stderr = cli.communicate(timeout=240)
    results = {world: torch.load(out) for world, (_, out) in workers.items()}
    return results, (cli.returncode, stdout, stderr, cli_folder)


@pytest.fixture
def parallel_results(launches):
    """world size -> what rank 0 of a gloo group of that size sampled under each of its meshes."""
    return {world: saved["samples"] for world, saved in launches[0].items()}


@pytest.mark.parametrize("world", sorted(worker.MESHES))
def test_a_split_forward_with_a_self_attention_mask_is_the_whole_forward(launches, world, one_thread):
    """Two batch items with their own per-token timesteps and a [B, T, T] attention-strength mask (some pairs
    blocked), 15 video tokens split over every rank: Ulysses (4 heads) and the key/value all-gather (1 head)."""
    for name, video, audio in launches[0][world]["forwards"]:
        ref_video, ref_audio = worker.masked_forward(worker.model(name))
        assert (video - ref_video).abs().max() <= 1e-5, name
        assert (audio - ref_audio).abs().max() <= 1e-5, name


@pytest.mark.parametrize("world", sorted(worker.MESHES))
def test_several_processes_sample_what_one_does(parallel_results, world, one_thread):
    models, single = {}, {}
    results = parallel_results[world]
    assert [r[0] for r in results] == worker.MESHES[world]
    for (name, guidance, sequence, batched, guided), video, audio, _ in results:
        if name not in models:
            models[name] = worker.model(name)
        if (name, batched, guided) not in single:
            # batching the passes moves results by ~1e-6 by itself: compare like with like
            single[name, batched, guided] = worker.run(models[name], batched, guided)
        ref_video, ref_audio = single[name, batched, guided]
        for got, ref in ((video, ref_video), (audio, ref_audio)):
            assert got.shape == ref.shape
            # Here the largest difference is 9.7e-6 on latents up to ~5 (the guidance scales, 7 for audio, amplify
            # float32 rounding); the bound scales with the latents so another CPU's rounding does not fail it.
            error = (got - ref).abs().max().item()
            bound = 1e-5 * max(1.0, ref.abs().max().item())
            assert error <= bound, f"{name} guidance {guidance} x sequence {sequence}: max error {error:.2e}"


def test_guidance_traffic_is_one_gather_of_the_predictions_per_step(parallel_results):
    """Per step each rank sends its slots of float32 x0 predictions (video 15 tokens + audio 7, 128 channels) to
    every other guidance rank; 4 passes over G ranks take ceil(4 / G) slots."""
    per_pass = (15 + 7) * 128 * 4
    steps = 2
    for world, results in parallel_results.items():
        for (_, guidance, _, _, guided), _, _, (sequence_bytes, guidance_bytes) in results:
            if not guided:  # one pass a step: all ranks split the video instead, nothing to gather
                assert guidance_bytes == 0 and sequence_bytes > 0
                continue
            slots = -(-4 // guidance)
            assert guidance_bytes == (guidance - 1) * slots * per_pass * steps
            if guidance == world:
                assert sequence_bytes == 0


def test_sequence_traffic_follows_the_ulysses_arithmetic(parallel_results):
    """Rank 0 of 2 sequence ranks (4 heads of 16, 15 tokens split 8 + 7), float32, per forward and block: q, k and
    v of its 8 tokens with the other rank's 2 heads go out (3 x 8 x 32 values), the attention of its 2 heads over
    the other rank's 7 tokens comes back to it (7 x 32); per video->audio attention its partial result for the 7
    audio queries (4 heads x (8 values + running maximum + sum)) is all-gathered; at the end the velocities (128
    wide), padded to 8 tokens. The STG pass skips the video self-attention of block 1, the modality-isolated pass
    every audio<->video attention."""
    (_, guidance, sequence, _, _), _, _, (sequence_bytes, _) = parallel_results[2][0]
    assert (guidance, sequence) == (1, 2)
    attention = (3 * 8 * 32 + 7 * 32) * 4
    video_to_audio = 7 * 4 * (8 + 2) * 4
    output = 8 * 128 * 4
    cond = uncond = 2 * (attention + video_to_audio) + output
    perturbed = cond - attention
    isolated = cond - 2 * video_to_audio
    steps = 2
    assert sequence_bytes == steps * (cond + uncond + perturbed + isolated)


def test_one_process_uses_no_mesh():
    assert parallel.current() is None
    assert parallel.is_writer()
    with pytest.raises(InputError, match="torch.distributed initialised"):
        parallel.Mesh(2)


def test_launch_variables(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert parallel.launched() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(InputError, match="torchrun"):
        parallel.launched()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert parallel.launched() == parallel.Launch(rank=1, world=2, local_rank=1)


def test_torchrun_generate_writes_one_file_from_rank_0(launches):
    """The command line under torchrun (2 CPU processes, gloo, the video tokens split): one file, from rank 0."""
    returncode, stdout, stderr, folder = launches[1]
    assert returncode == 0, stderr[-3000:]
    assert "2 processes: guidance 1 x sequence 2" in stderr
    assert stdout.count("wrote ") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4"]
    assert (folder / "clip.mp4").stat().st_size > 1000


def test_guidance_groups_default_to_the_passes_and_refuse_what_does_not_divide():
    assert parallel.guidance_groups(4, None, 4) == 4
    assert parallel.guidance_groups(8, None, 4) == 4
    assert parallel.guidance_groups(6, None, 4) == 3
    assert parallel.guidance_groups(4, None, 1) == 1  # distilled: every process splits the video
    assert parallel.guidance_groups(4, 2, 4) == 2
    with pytest.raises(InputError, match="split into 1, 2, 4 guidance group"):
        parallel.guidance_groups(4, 3, 4)
    with pytest.raises(InputError, match="is 0"):
        parallel.guidance_groups(2, 0, 4)
