"""Checkpoint loading: our loader against ltx-core's SingleGPUModelBuilder on the same monolith.

The file has the LTX-2.3 layout with full-width transformer layers (video 32x128, audio 32x64) but few of them,
so it is >= 1 GiB without needing a 40 GB download. Both loaders map the file lazily, so two cases are measured:
``lazy`` (open and build, weights still on disk) and ``touch`` (then read every byte once, as a first forward or a
move to the GPU would). Peak memory is the growth of the resident set over the timed calls; the requirement is
that it stays <= 1.2x the file size while every byte is read.
"""

from __future__ import annotations

import json
import os

import torch

from .runner import Case, release_heads

REF_PARTS = ("transformer", "video_encoder", "video_decoder", "audio_encoder", "audio_decoder", "vocoder")


def write_checkpoint(path: str, quick: bool) -> None:
    """A monolith with real transformer widths and ``num_layers`` 2 (1 in quick mode), stored in bfloat16."""
    import tiny_models

    heads = 8 if quick else 32
    config = tiny_models.tiny_config("LTX-2.3")
    config["transformer"].update(
        num_layers=1 if quick else 2,
        **release_heads(heads),
        connector_num_attention_heads=heads,
        connector_attention_head_dim=128,
        audio_connector_num_attention_heads=heads,
        audio_connector_attention_head_dim=64,
        connector_num_layers=1,
        audio_connector_num_layers=1,
    )
    original = tiny_models.tiny_config
    tiny_models.tiny_config = lambda variant: config
    try:
        tensors = tiny_models.file_state_dict(tiny_models.build_reference_parts("LTX-2.3"))
    finally:
        tiny_models.tiny_config = original
    tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    from safetensors.torch import save_file

    save_file(tensors, path, metadata={"config": json.dumps(config), "model_version": "2.3.0"})


def _touch(tensors) -> None:
    for t in tensors:
        t.reshape(-1).view(torch.uint8).sum()


def ours(path: str, touch: bool):
    from ltx_av.ltx_core import build_component, open_checkpoint
    from ltx_av.ltx_core.audio_vae import load_audio_vae
    from ltx_av.ltx_core.transformer import AudioVideoTransformer
    from ltx_av.ltx_core.video_vae import load_video_vae
    from ltx_av.ltx_core.vocoder import load_vocoder

    def step():
        # the modules the nodes build, in the stored dtype (the vocoder always runs in float32)
        ckpt = open_checkpoint(path)
        models = [
            build_component(ckpt, "transformer", AudioVideoTransformer),
            load_video_vae(ckpt),
            load_audio_vae(ckpt, dtype=None),
            load_vocoder(ckpt),
        ]
        if touch:
            _touch(t for m in models for t in m.state_dict().values())

    return step


def ref(path: str, touch: bool):
    import tiny_models
    from reference import SingleGPUModelBuilder

    def step():
        models = []
        for part in REF_PARTS:
            builder = SingleGPUModelBuilder(
                model_class_configurator=tiny_models._Configurator.of(tiny_models.REFERENCE_PARTS[part][0]),
                model_path=path,
                model_sd_ops=tiny_models._REFERENCE_SD_OPS[part],
            )
            models.append(builder.build(device=torch.device("cpu")))
        if touch:
            _touch(t for m in models for t in m.state_dict().values())

    return step


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    path = os.path.join(workdir, "ltx-2.3-wide.safetensors")
    write_checkpoint(path, quick)
    size_mib = os.path.getsize(path) / 2**20
    notes = (
        f"file {size_mib:.0f} MiB; ours = open_checkpoint + build_component of the transformer, both VAEs and the "
        "vocoder (the modules the nodes use); ref = SingleGPUModelBuilder.build of the same components"
    )
    shape = f"monolith {size_mib:.0f} MiB"
    return [
        Case(
            f"load.{mode}",
            shape,
            "bfloat16",
            "bench.load:ours",
            "bench.load:ref",
            {"path": path, "touch": mode == "touch"},
            notes=notes,
            warmup=0,
        )
        for mode in ("lazy", "touch")
    ]
