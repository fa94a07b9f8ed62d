"""``python -m ltx_av``: generate a video with sound headless, or write tiny stand-in model files.

    python -m ltx_av generate --prompt "a cat walks on a beach at sunset" [--image first.png]
    python -m ltx_av generate --checkpoint ltx-2.3-22b-dev.safetensors --gemma gemma-3-12b-it/ --prompt "..."
    python -m ltx_av make-tiny-models ComfyUI/models

Without ``--checkpoint`` the run uses a tiny built-in model with random weights (no downloads, a few seconds on a
CPU): the result is structured noise, which shows the whole path works end to end.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time


def _progress(stage: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{stage:>13} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
    sys.stderr.flush()


def _load_image(path: str):
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)


def generate(args: argparse.Namespace) -> str:
    from .ltx_core.media import write_mp4
    from .ltx_core.pipeline import Pipeline, tiny_pipeline

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ltx_av_tiny_") as scratch:
        if args.checkpoint:
            if not args.gemma:
                raise SystemExit("--checkpoint needs --gemma: a Gemma 3 12B folder, .safetensors or .gguf file")
            pipe = Pipeline.load(args.checkpoint, args.gemma, device=args.device, offload=args.offload)
        else:
            logging.getLogger("ltx_av").info("no --checkpoint: using the tiny built-in model (random weights)")
            pipe = tiny_pipeline(scratch, args.variant)
        image = _load_image(args.image) if args.image else None
        result = pipe.generate(
            args.prompt,
            negative_prompt=args.negative_prompt if args.negative_prompt is not None else _default_negative(args),
            width=args.width,
            height=args.height,
            frames=args.frames,
            frame_rate=args.fps,
            steps=args.steps,
            schedule=args.schedule,
            seed=args.seed,
            image=image,
            image_frame=args.image_frame,
            report=_progress,
        )
    output = os.path.abspath(args.output or f"ltx_av_{time.strftime('%Y%m%d_%H%M%S')}.mp4")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    write_mp4(output, result.frames, result.frame_rate, result.waveform, result.sample_rate)
    seconds = time.perf_counter() - started
    print(
        f"wrote {output} ({result.frames.shape[0]} frames {result.frames.shape[2]}x{result.frames.shape[1]} at "
        f"{result.frame_rate:g} fps, {result.sample_rate} Hz stereo audio) in {seconds:.1f} s"
    )
    return output


def _default_negative(args: argparse.Namespace) -> str:
    from .ltx_core.pipeline import DEFAULT_NEGATIVE_PROMPT, TINY_NEGATIVE_PROMPT

    return DEFAULT_NEGATIVE_PROMPT if args.checkpoint else TINY_NEGATIVE_PROMPT


def make_tiny_models(args: argparse.Namespace) -> None:
    from .ltx_core.tiny import write_tiny_models

    for path in write_tiny_models(args.folder):
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ltx_av", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="text (and optionally an image) -> .mp4 with sound")
    gen.add_argument("--prompt", default="a calm ocean at sunrise, waves rolling onto the sand, gulls calling")
    gen.add_argument("--negative-prompt", default=None, help="default: the official pipelines' negative prompt")
    gen.add_argument("--image", help="condition a frame on this image (PNG/JPEG)")
    gen.add_argument("--image-frame", type=int, default=0, help="which frame the image is (negative: from the end)")
    gen.add_argument("--checkpoint", help="official LTX-2 / LTX-2.3 .safetensors (default: tiny built-in model)")
    gen.add_argument("--gemma", help="Gemma 3 12B: Hugging Face folder, .safetensors or .gguf")
    gen.add_argument("--variant", default="LTX-2.3", choices=("LTX-2", "LTX-2.3"), help="tiny built-in model only")
    gen.add_argument("--width", type=int, help="multiple of 32 (default 768; 256 for the tiny model)")
    gen.add_argument("--height", type=int, help="multiple of 32 (default 512; 160 for the tiny model)")
    gen.add_argument("--frames", type=int, help="8k+1 (default 121; 49 for the tiny model)")
    gen.add_argument("--fps", type=float, default=24.0)
    gen.add_argument("--steps", type=int, help="default: 40 (LTX-2) / 30 (LTX-2.3); 8 for the tiny model")
    gen.add_argument("--schedule", default="ltx2", choices=("ltx2", "distilled"))
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    gen.add_argument("--offload", default="none", choices=("none", "blocks"), help="stream transformer blocks")
    gen.add_argument("--output", help="output .mp4 path (default: ./ltx_av_<time>.mp4)")
    gen.add_argument("-q", "--quiet", action="store_true")

    tiny = sub.add_parser("make-tiny-models", help="write tiny stand-in model files for the example workflows")
    tiny.add_argument("folder", help="a folder laid out like ComfyUI/models (checkpoints/, text_encoders/)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO, format="%(message)s")
    from .ltx_core.errors import LTXError

    try:
        if args.command == "generate":
            tiny_defaults = not args.checkpoint
            args.width = args.width or (256 if tiny_defaults else 768)
            args.height = args.height or (160 if tiny_defaults else 512)
            args.frames = args.frames or (49 if tiny_defaults else 121)
            args.steps = args.steps or (8 if tiny_defaults else None)
            _check_sizes(args)
            generate(args)
        else:
            make_tiny_models(args)
    except LTXError as e:  # our errors already say what was given and what is allowed: no traceback
        raise SystemExit(f"error: {e}") from None


def _check_sizes(args: argparse.Namespace) -> None:
    """Refuse bad sizes before any model is loaded (the same rule the pipeline applies)."""
    from .ltx_core.errors import InputError
    from .ltx_core.latents import video_latent_shape

    try:
        video_latent_shape(args.frames, args.height, args.width)
    except InputError as e:
        flag = next((f for f in ("frames", "height", "width") if str(e).startswith(f)), None)
        raise InputError(f"--{flag}: {e}" if flag else str(e)) from None
    if args.image and not os.path.isfile(args.image):
        raise InputError(f"--image: no such file {args.image!r}")


if __name__ == "__main__":
    main()
