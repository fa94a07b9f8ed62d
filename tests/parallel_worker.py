"""One process of the multi-process sampling test (tests/test_parallel.py) and what every process samples.

Run as ``python parallel_worker.py RANK WORLD RENDEZVOUS_FILE OUT_FILE``: joins a gloo group through the file,
samples :func:`run` under each mesh :data:`MESHES` lists for the world size (sequence, guidance and both
parallelisms, on tiny models with 4 heads (Ulysses) and 1 head (the key/value all-gather)) and runs
:func:`masked_forward` with the video split over every rank; rank 0 saves the latents, the bytes each run sent and
the velocities to ``OUT_FILE``.
"""

from __future__ import annotations

import sys

import torch

from ltx_av.ltx_core.conditioning import FrameCondition, KeyframeCondition
from ltx_av.ltx_core.config import TransformerConfig
from ltx_av.ltx_core.guidance import GuidanceParams
from ltx_av.ltx_core.sampling import sample
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.tiny import fill_deterministically, tiny_config
from ltx_av.ltx_core.transformer import AudioVideoTransformer

FULL_VIDEO = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), modality=3.0, rescale=0.7)
FULL_AUDIO = GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=(0,), modality=3.0, rescale=0.7)

# world size -> (model, guidance ranks, sequence ranks, batch the passes, guided). Unguided on a guidance mesh: one
# pass a step, so every rank joins one sequence group instead (Mesh.for_passes).
MESHES = {
    2: [
        ("heads4", 1, 2, False, True),
        ("heads4", 2, 1, False, True),
        ("heads4", 2, 1, True, True),
        ("heads1", 1, 2, False, True),
        ("heads4", 2, 1, False, False),
    ],
    4: [
        ("heads4", 1, 4, False, True),
        ("heads4", 4, 1, False, True),
        ("heads4", 2, 2, False, True),
        ("heads1", 2, 2, False, True),
        ("heads4", 2, 2, False, False),
    ],
}


def model(name: str) -> AudioVideoTransformer:
    """Tiny LTX-2.3 transformers (2 blocks): the test widths (4 video heads) or the stand-ins' (1 head)."""
    config = tiny_config("LTX-2.3", 2, stand_in=name == "heads1")
    m = AudioVideoTransformer(TransformerConfig.from_dict(config["transformer"]))
    fill_deterministically(m, 5)
    return m.eval()


def run(m: AudioVideoTransformer, batch_passes: bool = False, guided: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Full guidance on both streams (4 passes a step; ``guided`` False: none), an image at frame 0, a keyframe
    (appended tokens) and a partly kept audio latent: 4x1x3 latent frames + 3 keyframe tokens = 15 video tokens,
    which no rank count above divides."""
    c = m.config
    g = torch.Generator().manual_seed(3)

    def contexts(tokens: int) -> TextContexts:
        return TextContexts(
            torch.randn(1, tokens, c.video_dim, generator=g), torch.randn(1, tokens, c.audio_dim, generator=g)
        )

    first, key = torch.randn(1, 128, 1, 1, 3, generator=g), torch.randn(1, 128, 1, 1, 3, generator=g)
    positive, negative = contexts(5), contexts(5)
    return sample(
        m,
        torch.zeros(1, 128, 4, 1, 3),
        frame_rate=24.0,
        positive=positive,
        negative=negative,
        sigmas=[1.0, 0.6, 0.0],
        seed=11,
        video_guidance=FULL_VIDEO if guided else GuidanceParams(),
        audio_guidance=FULL_AUDIO if guided else GuidanceParams(),
        audio_latent=torch.randn(1, 8, 7, 16, generator=g),
        audio_mask=torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]]),
        conditions=[FrameCondition(first, 1.0, 0), KeyframeCondition(key, 17, 0.8)],
        batch_passes=batch_passes,
    )


def masked_forward(m: AudioVideoTransformer, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of ``batch`` items with a video self-attention mask (strengths in (0, 1], some pairs blocked)
    and per-token timesteps: the velocities."""
    from ltx_av.ltx_core.conditioning import audio_state, video_state
    from ltx_av.ltx_core.transformer import StreamInput

    c = m.config
    g = torch.Generator().manual_seed(4)
    video = video_state(torch.randn(batch, 128, 3, 1, 5, generator=g), 24.0)
    audio = audio_state(torch.randn(batch, 8, 6, 16, generator=g))
    t = video.latent.shape[1]
    mask = torch.rand(batch, t, t, generator=g) * (torch.rand(batch, t, t, generator=g) > 0.2)
    mask = mask + torch.eye(t)  # every token keeps itself
    timesteps = torch.rand(batch, t, generator=g)
    v = StreamInput(
        latent=video.latent,
        sigma=torch.tensor([0.7, 0.4][:batch]),
        timesteps=timesteps,
        positions=video.positions,
        context=torch.randn(batch, 5, c.video_dim, generator=g),
        self_attention_mask=mask.clamp(max=1),
        keyframes=video.keyframes,
    )
    a = StreamInput(
        latent=audio.latent,
        sigma=torch.tensor([0.7, 0.4][:batch]),
        timesteps=torch.full((batch, audio.latent.shape[1]), 0.5),
        positions=audio.positions,
        context=torch.randn(batch, 5, c.audio_dim, generator=g),
    )
    with torch.no_grad():
        return m(v, a)


def main(rank: int, world: int, rendezvous: str, out: str) -> None:
    import torch.distributed as dist

    from ltx_av.ltx_core import parallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    models = {name: model(name) for name in {m for m, *_ in MESHES[world]}}
    results = []
    for case in MESHES[world]:
        name, guidance, sequence, batched, guided = case
        mesh = parallel.Mesh(guidance, sequence)
        parallel.TRAFFIC.reset()
        with parallel.use(mesh):
            video, audio = run(models[name], batched, guided)
        traffic = (parallel.TRAFFIC.sequence_bytes, parallel.TRAFFIC.guidance_bytes)
        results.append((case, video, audio, traffic))
    forwards = []
    with parallel.use(parallel.Mesh(1, world)):
        for name in ("heads4", "heads1"):
            forwards.append((name, *masked_forward(models.get(name) or model(name))))
    if rank == 0:
        torch.save({"samples": results, "forwards": forwards}, out)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
