"""python -m ltx_av: generate a video with sound headless, or write tiny stand-in model files.

    python -m ltx_av generate --prompt "a cat walks on a beach at sunset" [--image first.png]
    python -m ltx_av generate --checkpoint ltx-2.3-22b-dev.safetensors --gemma gemma-3-12b-it/ --prompt "..."
    python -m ltx_av generate --two-stage --schedule distilled --checkpoint ltx-2.3-22b-distilled.safetensors \
        --upsampler ltx-2.3-spatial-upscaler-x2-1.1.safetensors --gemma gemma-3-12b-it/ --prompt "..."
    python -m ltx_av generate --two-stage --checkpoint ltx-2.3-22b-dev.safetensors \
        --upsampler ltx-2.3-spatial-upscaler-x2-1.1.safetensors --gemma gemma-3-12b-it/ --prompt "..." \
        --stage2-lora ltx-2.3-22b-distilled-lora-384.safetensors [--lora my-style.safetensors:0.8]
    python -m ltx_av generate --seconds 30 --prompt "a red car drives out of a city" --prompt "... along the coast"
    python -m ltx_av make-tiny-models ComfyUI/models

Without --checkpoint the run uses a tiny built-in model (no downloads, seconds on a CPU): the demo model when its
files are in ltx_core/demo_model/ (an LTX-2.3 file at toy widths trained by ``train-demo`` on a world of coloured
shapes and tones, with prompts such as "a red ball bounces, low hum"), else, and always with --variant, --two-stage
or --lora, the stand-in with random weights, whose structured noise shows the path works end to end.

Every argument is checked before any model is loaded; a mistake ends the run at once with exit status 2 and one
line on stderr, ``error: --flag: what was given and what is allowed``, and nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field

from .ltx_core.errors import InputError

# Exit statuses: 2 for a mistake in the arguments (as argparse's own usage errors), 1 when the run itself fails
# (a disk filling up while writing), 130 when interrupted.
USAGE_ERROR = 2
RUN_FAILED = 1
INTERRUPTED = 130

DEFAULT_PROMPT = "a calm ocean at sunrise, waves rolling onto the sand, gulls calling"
# The built-in demo model's: a bounce shows the picture, the tone and the clicks landing on the floor contacts.
DEMO_PROMPT = "a red ball bounces, low hum"
# Sizes of a run: (width, height, frames, steps) with a checkpoint and with the built-in tiny model.
CHECKPOINT_SIZES = (768, 512, 121, None)
TINY_SIZES = (256, 160, 49, 8)
# The tiny model's width and height with --two-stage, whose sides are multiples of 64 (stage 1: 128x96).
TINY_TWO_STAGE_SIZES = (256, 192)

log = logging.getLogger("ltx_av")


class Refused(InputError):
    """A command-line mistake: ``flag`` is what the user typed (``--fps``), ``message`` what is wrong with it."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"{flag}: {message}")
        self.flag = flag


def _flagged(flag: str, error: Exception) -> Refused:
    """The pack's error for one flag as a :class:`Refused`, without repeating the flag or the argument's Python
    name at the start of the message."""
    text = str(error)
    for prefix in (flag, flag.lstrip("-").replace("-", "_"), flag.lstrip("-")):
        if text.startswith(prefix + " ") or text.startswith(prefix + ":"):
            text = text[len(prefix) :].lstrip(": ")
            break
    return Refused(flag, text)


# -- the terminal: a progress bar that log lines never land in --------------------------------------------------


class Console:
    """Progress on stderr: redrawn in place on a terminal (``\\r``), one line per update otherwise. A log record
    printed while a bar is drawn first ends the bar's line (see :class:`ConsoleHandler`)."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.open = False  # a bar is drawn and its line not ended

    def progress(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"{stage:>13} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if self.tty:
            finished = done >= total
            self.stream.write(f"\r{line}" + ("\n" if finished else ""))
            self.open = not finished
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end_line(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


class ConsoleHandler(logging.StreamHandler):
    """A log handler that ends an open progress line before it prints, so a warning never lands inside the bar."""

    def __init__(self, console: Console):
        super().__init__(console.stream)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.end_line()
        super().emit(record)


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"error: {text}"
        if record.levelno >= logging.WARNING:
            return f"warning: {text}"
        return text


def _setup_logging(console: Console, quiet: bool) -> None:
    handler = ConsoleHandler(console)
    handler.setFormatter(_Format("%(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, ConsoleHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.captureWarnings(True)  # Python warnings (torch, PIL) go through the same handler


# -- checking arguments ------------------------------------------------------------------------------------------


def _pick_threads() -> int:
    """Threads for torch on the CPU: the cores this process may use, less one. torch's own default (one thread per
    core) collapses on a machine shared with another busy process, because every parallel region waits for a
    thread the OS has descheduled; keeping one core free absorbs one such process (README: the measured times)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass
class Plan:
    """Everything a ``generate`` run needs, checked."""

    checkpoint: str | None
    gemma: str | None
    variant: str
    device: str
    offload: str
    threads: int
    prompt: str
    negative_prompt: str
    width: int
    height: int
    frames: int
    frame_rate: float
    steps: int | None
    schedule: str
    seed: int
    image: object  # [H, W, 3] float tensor or None
    image_frame: int
    output: str
    new_folders: list[str]
    two_stage: bool = False
    stage2_audio: str = "refine"
    upsampler: str | None = None  # with --checkpoint; the tiny model writes its own
    loras: list[tuple[str, float]] = field(default_factory=list)  # --lora: (file, strength), every stage
    stage2_loras: list[tuple[str, float]] = field(default_factory=list)  # --stage2-lora: stage 2 only
    split: object = None  # LTX-2.5: the pipeline's SplitFiles (every part's file, checked)
    prompts: list[str] = field(default_factory=list)  # --prompt, every value (a long video: one per segment)
    chain: object = None  # --seconds: the long video's ChainPlan (its segments); None: one clip of `frames`
    duration_head: str | None = None  # --frames auto: LTX-2.5's duration head file; `frames` is then predicted
    compile: bool = False  # --compile: the transformer blocks run through torch.compile
    demo: bool = False  # no --checkpoint: the trained demo model (else the random tiny model of `variant`)


def _check_device(text: str | None, *, tiny: bool) -> str:
    import torch

    if text is None:
        if tiny:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise Refused("--device", f"{text!r} is not a device; expected cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise Refused("--device", f"{text!r} is not supported; expected cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
            raise Refused(
                "--device",
                f"{text!r} was asked for, but this PyTorch ({torch.__version__}, built {build}) sees no CUDA device; "
                "use --device cpu or leave --device out",
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise Refused("--device", f"{text!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.index not in (None, 0):
        raise Refused("--device", f"{text!r}: the CPU has no numbered devices; use cpu")
    return str(device)


def _nearest_existing(path: str) -> tuple[str, list[str]]:
    """(the deepest existing folder above ``path``, the folders below it that would have to be created, top
    first). Raises :class:`Refused` (by the caller's flag) when something on the way is a file."""
    missing = []
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return parent, missing[::-1]


def check_writable_place(path: str, flag: str, *, what: str) -> list[str]:
    """Check that ``path`` (a file or folder to be written) can be created: the deepest existing folder above it
    is a folder this process can write in, and names fit the file system. Nothing is left behind. Returns the
    folders that will have to be created, top first."""
    parent, missing = _nearest_existing(path)
    if not os.path.isdir(parent):
        raise Refused(flag, f"cannot write {what} {path!r}: {parent!r} is a file, not a folder")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in [os.path.basename(p) for p in missing] + [os.path.basename(path)]:
        if len(os.fsencode(part)) > limit:
            raise Refused(flag, f"the name {part[:40]!r}... is {len(os.fsencode(part))} bytes long; at most {limit}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".ltx_av_probe_")
    except OSError as e:
        raise Refused(flag, f"cannot write {what} in {parent!r}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return missing


def _check_output(text: str | None) -> tuple[str, list[str]]:
    output = text if text is not None else f"ltx_av_{time.strftime('%Y%m%d_%H%M%S')}.mp4"
    if not output.strip():
        raise Refused("--output", "is empty; give a file name ending in .mp4")
    output = os.path.abspath(os.path.expanduser(output))
    if text is not None and (text.endswith(os.sep) or os.path.isdir(output)):
        raise Refused(
            "--output",
            f"{text!r} is a folder; give a file name, e.g. {os.path.join(text, 'clip.mp4')!r}",
        )
    stem, suffix = os.path.splitext(output)
    if suffix.lower() != ".mp4":
        shown = "no extension" if not suffix else f"the extension {suffix!r}"
        raise Refused(
            "--output",
            f"{text!r} has {shown}; the video is written as H.264 + AAC in an MP4 file, so the name must end in "
            f".mp4 (e.g. {os.path.basename(stem) + '.mp4'!r})",
        )
    if os.path.lexists(output) and not os.path.isfile(output):
        raise Refused("--output", f"{text!r} exists and is not a regular file")
    missing = check_writable_place(output, "--output", what="the video")
    return output, missing


def _check_image(path: str):
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise Refused("--image", f"no such file {path!r}")
    if os.path.isdir(path):
        raise Refused("--image", f"{path!r} is a folder; expected an image file (PNG, JPEG, WebP, ...)")
    try:
        with Image.open(path) as img:
            img.verify()  # the whole file is read: a truncated or damaged image fails here, not after sampling
        with Image.open(path) as img:
            size = img.size
            rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise Refused("--image", f"{path!r} is not an image PIL can read ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # PIL's errors for damaged files
        raise Refused("--image", f"{path!r} cannot be read as an image ({e})") from None
    if min(size) < 1:
        raise Refused("--image", f"{path!r} is {size[0]}x{size[1]} pixels; it has no pixels")
    return torch.from_numpy(rgb)


def _check_checkpoint(path: str, gemma: str | None) -> tuple[str, str, int, object]:
    """(path, variant, latent channels of its video VAE, transformer config), from the header and config only."""
    from .ltx_core.checkpoint import open_checkpoint
    from .ltx_core.errors import LTXError
    from .ltx_core.gemma import inspect_gemma
    from .ltx_core.text_encoder import check_gemma_fits

    if not os.path.lexists(path):
        raise Refused("--checkpoint", f"no such file {path!r}")
    ckpt = None
    try:
        ckpt = open_checkpoint(path)  # reads the header and the config only
        needed = ("transformer", "text_encoder", "video_vae", "audio_vae", "vocoder")
        lacking = [c for c in needed if c not in ckpt.components]
        if lacking:
            raise Refused(
                "--checkpoint",
                f"{path!r} holds {', '.join(ckpt.components) or 'no LTX component'} but not {', '.join(lacking)}; "
                "generate needs the official single-file checkpoint with all five parts",
            )
        text_config = ckpt.component_config("text_encoder")
        variant = ckpt.variant_name
        latent_channels = ckpt.component_config("video_vae").latent_channels
        transformer_config = ckpt.component_config("transformer")
    except LTXError as e:
        raise _flagged("--checkpoint", e) from None
    finally:
        if ckpt is not None:
            ckpt.file.close()
    if gemma is None:
        raise Refused(
            "--gemma",
            "is required with --checkpoint: the Gemma 3 12B text encoder as a Hugging Face folder, a .safetensors "
            "or a .gguf file",
        )
    if not os.path.exists(gemma):
        raise Refused("--gemma", f"no such file or folder {gemma!r}")
    try:
        source = inspect_gemma(gemma)  # headers only
        check_gemma_fits(text_config, source.hidden_size, source.num_hidden_states, f"Gemma '{source.name}'")
    except LTXError as e:
        raise _flagged("--gemma", e) from None
    return path, variant, latent_channels, transformer_config


# LTX-2.5's parts -> the flag that names each file.
SPLIT_FLAGS = {"text_encoder": "--text-encoder", "video_vae": "--video-vae", "audio_vae": "--audio-vae"}


def _is_split(path: str) -> bool:
    """Whether --checkpoint is the transformer file of a split release (LTX-2.5); a file that cannot be read is
    left to _check_checkpoint, which names what is wrong."""
    from .ltx_core.errors import LTXError
    from .ltx_core.pipeline import is_split_transformer

    try:
        return os.path.isfile(path) and is_split_transformer(path)
    except LTXError:
        return False


def _check_split(args: argparse.Namespace) -> tuple[str, str, int, object, object]:
    """LTX-2.5: (path, variant, latent channels, transformer config, SplitFiles), every file found or named and
    checked from its header (its part, one release, the Gemma the transformer names)."""
    from .ltx_core.checkpoint import open_checkpoint
    from .ltx_core.errors import LTXError
    from .ltx_core.pipeline import _split_latent_channels, find_split_files

    if args.gemma is not None and args.text_encoder is not None:
        raise Refused("--gemma", "and --text-encoder both name the text encoder; give it once, with --text-encoder")
    names = {"transformer": "--checkpoint", **SPLIT_FLAGS}
    if args.text_encoder is None and args.gemma is not None:
        names["text_encoder"] = "--gemma"
    try:
        split = find_split_files(
            args.checkpoint,
            text_encoder=args.text_encoder or args.gemma,
            video_vae=args.video_vae,
            audio_vae=args.audio_vae,
            names=names,
        )
        ckpt = open_checkpoint(split.transformer)
        variant = ckpt.variant_name
        transformer_config = ckpt.component_config("transformer")
        latent_channels = _split_latent_channels(split.video_vae)
    except LTXError as e:
        text = str(e)
        flag = next((f for f in names.values() if text.startswith(f + ":")), "--checkpoint")
        raise Refused(flag, text[len(flag) + 1 :].strip() if text.startswith(flag + ":") else text) from None
    return split.transformer, variant, latent_channels, transformer_config, split


# --frames auto: the duration head's file as released, and the folders beside the transformer it is looked for in.
AUTO_FRAMES = "auto"
DURATION_HEAD_FILE = "ltx-2.5-duration-head-bf16.safetensors"
DURATION_HEAD_FOLDERS = ("model_patches",)


def _frames_value(text: str) -> int | str:
    """--frames: a whole number, or "auto" (the duration head decides)."""
    if text.strip().lower() == AUTO_FRAMES:
        return AUTO_FRAMES
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames (8k+1) or 'auto'; got {text!r}") from None


def _auto_frames_bound(fps: float) -> int:
    """The most frames --frames auto can choose at ``fps`` (the head's range ends at 20 s): what the request's
    checks see until the prompt is encoded; an unusable --fps is left to them."""
    from .ltx_core.duration_head import DEFAULT_MAX_SECONDS, seconds_to_num_frames

    try:
        return seconds_to_num_frames(DEFAULT_MAX_SECONDS, fps)
    except InputError:
        return CHECKPOINT_SIZES[2]


def _refuse_auto_frames(checkpoint: str) -> None:
    """--frames auto with a single-file LTX-2 / LTX-2.3 checkpoint: those releases have no duration head. Told
    before --gemma is asked for; a file that cannot be read is left to _check_checkpoint."""
    from .ltx_core.checkpoint import identify
    from .ltx_core.errors import LTXError

    try:
        release = identify(checkpoint).release
    except LTXError:
        return
    raise Refused(
        "--frames",
        f"auto predicts the length with LTX-2.5's duration head, and {os.path.basename(checkpoint)!r} is {release}, "
        "which has none; give the number of frames (8k+1: 9, 17, ..., 121, ...)",
    )


def _check_duration_head(path: str | None, transformer: str, transformer_config) -> str:
    """--frames auto with LTX-2.5: the duration head named with --duration-head, or the one found beside the
    transformer (its folder, ../model_patches; the released name first), checked from its header: that it is a
    duration head and reads contexts as wide as the transformer's."""
    from .ltx_core.checkpoint import open_checkpoint
    from .ltx_core.duration_head import DurationHeadConfig
    from .ltx_core.errors import LTXError

    def reads(candidate: str) -> DurationHeadConfig:
        ckpt = open_checkpoint(candidate)
        try:
            if ckpt.role != "duration_head":
                raise Refused("--duration-head", f"{ckpt.identity.describe()} is not a duration head")
            return DurationHeadConfig.from_metadata(ckpt.file.metadata, repr(ckpt.name))
        finally:
            ckpt.file.close()

    widths = (transformer_config.cross_attention_dim, transformer_config.audio_cross_attention_dim)
    if path is not None:
        if not os.path.isfile(path):
            raise Refused("--duration-head", f"no such file {path!r}")
        try:
            config = reads(path)
        except LTXError as e:
            raise _flagged("--duration-head", e) from None
        if (config.video_dim, config.audio_dim) != widths:
            raise Refused(
                "--duration-head",
                f"{os.path.basename(path)!r} reads text contexts {config.video_dim} / {config.audio_dim} wide, but "
                f"{os.path.basename(transformer)!r} makes them {widths[0]} / {widths[1]}: it belongs to another model",
            )
        return path
    here = os.path.dirname(os.path.abspath(transformer))
    folders = dict.fromkeys([here, *(os.path.join(os.path.dirname(here), f) for f in DURATION_HEAD_FOLDERS)])
    for folder in folders:
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        for name in sorted(
            (n for n in names if n.lower().endswith(".safetensors")), key=lambda n: n != DURATION_HEAD_FILE
        ):
            candidate = os.path.join(folder, name)
            try:
                config = reads(candidate)
            except LTXError:  # another part, or unreadable: not the head
                continue
            if (config.video_dim, config.audio_dim) == widths:
                log.info("--frames auto: using the duration head %s", candidate)
                return candidate
    raise Refused(
        "--duration-head",
        f"--frames auto needs LTX-2.5's duration head ({DURATION_HEAD_FILE}), and none that fits was found beside "
        f"{os.path.basename(transformer)!r} (in its folder or ../{', ../'.join(DURATION_HEAD_FOLDERS)}); name the "
        "file with --duration-head, or give the number of frames",
    )


def _check_upsampler(path: str | None, latent_channels: int) -> str:
    from .ltx_core.errors import LTXError
    from .ltx_core.pipeline import check_upsampler_file

    if path is None:
        raise Refused(
            "--upsampler",
            "is required with --two-stage and --checkpoint: the spatial x2 latent upsampler released with the model "
            "(ltx-2.3-spatial-upscaler-x2-1.1.safetensors for LTX-2.3, ltx-2-spatial-upscaler-x2-1.0.safetensors for "
            "LTX-2)",
        )
    try:
        check_upsampler_file(path, latent_channels, name="--upsampler")  # the header only
    except LTXError as e:
        raise _flagged("--upsampler", e) from None
    return path


def _split_lora(text: str) -> tuple[str, str | None]:
    """``FILE[:STRENGTH]`` as (FILE, strength text or None). The strength is what follows the last ':', unless the
    whole text names an existing file or that part holds a path separator (a Windows drive: ``C:\\loras\\x``)."""
    head, colon, tail = text.rpartition(":")
    if not colon or os.path.lexists(text) or "/" in tail or "\\" in tail:
        return text, None
    return head, tail


def _open_lora(text: str, flag: str):
    """One ``--lora`` / ``--stage2-lora`` value: (the LoRA file, its header read and checked; the strength)."""
    from .ltx_core import checks
    from .ltx_core.errors import LTXError
    from .ltx_core.lora import read_lora
    from .ltx_core.pipeline import LORA_STRENGTH_LIMIT

    path, shown = _split_lora(text)
    strength = 1.0
    if shown is not None:
        example = f"{os.path.basename(path) or 'lora.safetensors'}:0.8"
        if not shown.strip():
            raise Refused(
                flag, f"{text!r} has nothing after ':'; give a strength ({example!r}) or leave ':' out for 1.0"
            )
        try:
            strength = float(shown)
        except ValueError:
            raise Refused(
                flag,
                f"{text!r}: the strength after ':' must be a number, e.g. {example!r}; got {shown!r} (the form is "
                "FILE[:STRENGTH])",
            ) from None
    try:
        strength = checks.number(
            strength, f"the strength of {path!r}", minimum=-LORA_STRENGTH_LIMIT, maximum=LORA_STRENGTH_LIMIT
        )
    except InputError as e:
        raise Refused(flag, str(e)) from None
    if not path:
        raise Refused(flag, f"{text!r} names no file; the form is FILE[:STRENGTH]")
    if not os.path.lexists(path):
        raise Refused(flag, f"no such file {path!r}")
    if os.path.isdir(path):
        raise Refused(
            flag, f"{path!r} is a folder; expected a LoRA file such as ltx-2.3-22b-distilled-lora-384.safetensors"
        )
    try:
        return read_lora(path), strength  # the header (and any alphas) only
    except LTXError as e:
        raise _flagged(flag, e) from None


def _check_loras(args: argparse.Namespace, variant: str, transformer_config) -> tuple[list, list]:
    """The --lora and --stage2-lora values as (path, strength) lists: each spelled right, its file a LoRA (the
    header), then every LoRA checked against the transformer ``transformer_config`` describes (the shapes: no
    factor is read and nothing is loaded)."""
    from .ltx_core.errors import LTXError
    from .ltx_core.lora import check_lora_fits
    from .ltx_core.pipeline import transformer_shapes

    flagged = [("--lora", text) for text in args.lora or ()]
    flagged += [("--stage2-lora", text) for text in args.stage2_lora or ()]
    opened = [(flag, *_open_lora(text, flag)) for flag, text in flagged]
    if not opened:
        return [], []
    shapes = transformer_shapes(transformer_config)
    for flag, lora, _ in opened:
        try:
            check_lora_fits(lora, shapes, variant)
        except LTXError as e:
            raise _flagged(flag, e) from None
    chosen = [
        [(lora.path, strength) for f, lora, strength in opened if f == flag] for flag in ("--lora", "--stage2-lora")
    ]
    return chosen[0], chosen[1]


def plan_generate(args: argparse.Namespace) -> Plan:
    """Check every ``generate`` argument, cheapest first; nothing is loaded and nothing is written."""
    from .ltx_core import checks
    from .ltx_core.pipeline import DEFAULT_NEGATIVE_PROMPT, TINY_NEGATIVE_PROMPT, check_request

    tiny = args.checkpoint is None
    if tiny and args.gemma is not None:
        raise Refused("--gemma", "is only used with --checkpoint (the built-in tiny model has its own text encoder)")
    for flag in SPLIT_FLAGS.values():
        if tiny and getattr(args, flag[2:].replace("-", "_")) is not None:
            raise Refused(flag, "names a file of LTX-2.5's split release; give its transformer with --checkpoint too")
    if not tiny and args.variant is not None:
        raise Refused(
            "--variant", "chooses the built-in tiny model's version; with --checkpoint it comes from the file"
        )
    if args.image is None and args.image_frame is not None:
        raise Refused("--image-frame", "says which frame --image becomes; give --image too")
    if not args.two_stage:
        for flag, value in (("--upsampler", args.upsampler), ("--stage2-audio", args.stage2_audio)):
            if value is not None:
                raise Refused(flag, "is only used with --two-stage; add --two-stage or leave it out")
        if args.stage2_lora:
            raise Refused(
                "--stage2-lora",
                "adds a LoRA to stage 2 of --two-stage, and this run has one stage; add --two-stage, or use --lora "
                "for a LoRA in every stage",
            )
    if tiny and args.upsampler is not None:
        raise Refused(
            "--upsampler", "is only used with --checkpoint (the built-in tiny model brings its own tiny upsampler)"
        )
    auto = args.frames == AUTO_FRAMES
    if args.duration_head is not None and not auto:
        raise Refused("--duration-head", "is only used with --frames auto; add it or leave --duration-head out")
    if auto and tiny:
        raise Refused(
            "--frames",
            "auto predicts the length with LTX-2.5's duration head, which the built-in tiny model lacks; give "
            "--checkpoint with LTX-2.5's transformer file, or the number of frames",
        )
    demo = tiny and _uses_demo(args)
    prompts = args.prompt or [DEMO_PROMPT if demo else DEFAULT_PROMPT]
    chain = _plan_chain(args, prompts)

    width, height, frames, steps = TINY_SIZES if tiny else CHECKPOINT_SIZES
    if tiny and args.two_stage:
        width, height = TINY_TWO_STAGE_SIZES
    width = args.width if args.width is not None else width
    height = args.height if args.height is not None else height
    frames = args.frames if args.frames is not None else frames
    if auto:  # the request is checked at the longest the head may choose; again with its choice once it is made
        frames = _auto_frames_bound(args.fps)
    if chain is not None:  # every segment is checked as a clip of its own: the longest stands for them all
        frames = max(segment.frames for segment in chain.segments)
    if args.steps is not None:
        steps = args.steps
    elif args.schedule == "distilled":
        steps = None
    names = {
        "prompt": "--prompt",
        "negative_prompt": "--negative-prompt",
        "width": "--width",
        "height": "--height",
        "frames": "--frames" if chain is None else "--segment-seconds",
        "frame_rate": "--fps",
        "steps": "--steps",
        "schedule": "--schedule",
        "seed": "--seed",
        "image_frame": "--image-frame",
        "two_stage": "--two-stage",
        "stage2_audio": "--stage2-audio",
    }
    negative = args.negative_prompt
    if negative is None:
        negative = TINY_NEGATIVE_PROMPT if tiny else DEFAULT_NEGATIVE_PROMPT
    try:
        request = check_request(
            prompt=prompts[0],
            negative_prompt=negative,
            width=width,
            height=height,
            frames=frames,
            frame_rate=args.fps,
            steps=steps,
            schedule=args.schedule,
            seed=args.seed,
            image_frame=args.image_frame if args.image_frame is not None and chain is None else 0,
            two_stage=args.two_stage,
            stage2_audio=args.stage2_audio or "refine",
            names=names,
        )
    except InputError as e:
        flag = next((f for f in names.values() if str(e).startswith(f + " ") or str(e).startswith(f + ":")), None)
        if flag is None:
            raise
        raise _flagged(flag, e) from None
    if chain is not None:
        _check_chain(args, chain, prompts)
        request["image_frame"] = args.image_frame or 0  # a frame of the whole video, checked against its length
    try:
        threads = checks.integer(args.threads, "--threads", minimum=1, maximum=1024)
    except InputError as e:
        raise _flagged("--threads", e) from None
    device = _check_device(args.device, tiny=tiny)
    if args.offload == "blocks" and not device.startswith("cuda"):
        raise Refused(
            "--offload",
            f"blocks streams the transformer's blocks from system RAM to a GPU one at a time; the device is {device}, "
            "where the weights already live in system RAM (leave --offload out, or add --device cuda)",
        )
    if not auto:  # --frames auto: checked once the frame count is known
        _check_memory(request, "--frames" if chain is None else "--segment-seconds")
    output, new_folders = _check_output(args.output)
    checkpoint, variant, upsampler, transformer_config = (None, args.variant or "LTX-2.3", None, None)
    split = duration_head = None
    if not tiny and _is_split(args.checkpoint):
        checkpoint, variant, latent_channels, transformer_config, split = _check_split(args)
        if auto:
            duration_head = _check_duration_head(args.duration_head, checkpoint, transformer_config)
        if args.two_stage:
            upsampler = _check_upsampler(args.upsampler, latent_channels)
    elif not tiny:
        for flag in SPLIT_FLAGS.values():
            if getattr(args, flag[2:].replace("-", "_")) is not None:
                raise Refused(
                    flag,
                    f"names a file of LTX-2.5's split release, but {args.checkpoint!r} is a single-file checkpoint "
                    "that holds its own; leave it out",
                )
        if auto:
            _refuse_auto_frames(args.checkpoint)
        checkpoint, variant, latent_channels, transformer_config = _check_checkpoint(args.checkpoint, args.gemma)
        if args.two_stage:
            upsampler = _check_upsampler(args.upsampler, latent_channels)
    elif args.lora or args.stage2_lora:
        from .ltx_core.config import TransformerConfig
        from .ltx_core.tiny import tiny_config

        # the built-in model is the make-tiny-models stand-in, which the stand-in LoRAs fit
        transformer_config = TransformerConfig.from_dict(tiny_config(variant, stand_in=True)["transformer"])
    loras, stage2_loras = _check_loras(args, variant, transformer_config)
    image = _check_image(args.image) if args.image is not None else None
    return Plan(
        loras=loras,
        stage2_loras=stage2_loras,
        upsampler=upsampler,
        checkpoint=checkpoint,
        gemma=args.gemma,
        split=split,
        variant=variant,
        device=device,
        offload=args.offload,
        threads=threads,
        image=image,
        output=output,
        new_folders=new_folders,
        prompts=prompts,
        chain=chain,
        duration_head=duration_head,
        compile=args.compile,
        demo=demo,
        **request,
    )


def _uses_demo(args: argparse.Namespace) -> bool:
    """Without --checkpoint: whether the trained demo model runs. --variant asks for the random tiny model of that
    version; --two-stage and LoRAs need the stand-in upsampler and LoRAs that fit the tiny model."""
    from .ltx_core import demo_model

    return (
        args.variant is None
        and not args.two_stage
        and not args.lora
        and not args.stage2_lora
        and demo_model.available()
    )


def _plan_chain(args: argparse.Namespace, prompts: list[str]):
    """--seconds: the long video's segments (a ChainPlan), its flags checked against the others; None without
    --seconds, whose own flags are then refused."""
    from .ltx_core import checks
    from .ltx_core.chain import plan_chain
    from .ltx_core.pipeline import MAX_FRAME_RATE

    if args.seconds is None:
        for flag, value in (("--segment-seconds", args.segment_seconds), ("--overlap-seconds", args.overlap_seconds)):
            if value is not None:
                raise Refused(
                    flag, "is only used with --seconds (a long video in segments); add --seconds or leave it out"
                )
        if len(prompts) > 1:
            raise Refused(
                "--prompt",
                f"was given {len(prompts)} times; several prompts are for the segments of a long video: add --seconds, "
                "or give one --prompt",
            )
        return None
    if args.frames is not None:
        raise Refused(
            "--frames",
            "sets the length of a single clip; with --seconds the video lasts --seconds, in segments of "
            "--segment-seconds: leave --frames out",
        )
    if args.two_stage:
        raise Refused(
            "--two-stage",
            "is not supported with --seconds: a long video's segments are sampled in one stage; leave --two-stage out, "
            "or make a single clip",
        )
    try:
        fps = checks.number(args.fps, "--fps", above=0.0, maximum=MAX_FRAME_RATE)
        return plan_chain(
            args.seconds,
            fps,
            5.0 if args.segment_seconds is None else args.segment_seconds,
            1.0 if args.overlap_seconds is None else args.overlap_seconds,
            names={
                "seconds": "--seconds",
                "segment_seconds": "--segment-seconds",
                "overlap_seconds": "--overlap-seconds",
            },
        )
    except InputError as e:
        raise _flagged(str(e).split(" ", 1)[0].rstrip(":"), e) from None


def _check_chain(args: argparse.Namespace, chain, prompts: list[str]) -> None:
    """What a long video asks of --prompt, --seed and --image-frame, given its segments."""
    from .ltx_core import checks
    from .ltx_core.sampling import MAX_SEED

    count = len(chain.segments)
    if len(prompts) > count:
        raise Refused(
            "--prompt",
            f"was given {len(prompts)} times but the video has {count} segment(s) ({chain.describe()[0]}); give at "
            f"most {count}, or a longer --seconds",
        )
    for text in prompts[1:]:
        try:
            checks.text(text, "--prompt")
        except InputError as e:
            raise _flagged("--prompt", e) from None
    if args.seed > MAX_SEED - (count - 1):
        raise Refused(
            "--seed",
            f"is {args.seed}; segment i uses --seed + i - 1, so the {count} segments need seeds up to "
            f"{args.seed + count - 1}, past the largest, {MAX_SEED}: at most {MAX_SEED - count + 1}",
        )
    if args.image_frame is not None:
        try:
            checks.integer(args.image_frame, "--image-frame", minimum=-chain.frames, maximum=chain.frames - 1)
        except InputError as e:
            raise _flagged("--image-frame", e) from None


def _check_memory(request: dict, flag: str) -> None:
    """Refuse a size whose decoded frames alone (float32 pixels plus the uint8 copy written out) cannot fit the
    memory available now, before minutes are spent sampling it. A long video streams its frames into the file:
    ``request`` is then its longest segment, named by ``flag``."""
    import torch

    from .ltx_core import checks
    from .ltx_core.errors import TooLargeError
    from .nodes import host

    f, h, w = request["frames"], request["height"], request["width"]
    needed = f * h * w * 3 * (4 + 1)
    try:
        checks.fits_memory(
            needed,
            host.available_memory(torch.device("cpu")),
            f"{f} frames of {w}x{h}: the decoded {'video' if flag == '--frames' else 'segment'}",
            where="system memory",
            advice=f"make the {'video' if flag == '--frames' else 'segments'} shorter or smaller",
        )
    except TooLargeError as e:
        raise Refused(flag, str(e)) from None


# -- running -----------------------------------------------------------------------------------------------------


def generate(plan: Plan, console: Console, guidance_parallel: int | None = None) -> str:
    import torch

    from .ltx_core import parallel

    launch = parallel.launched()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        if launch is None:
            if guidance_parallel is not None:
                raise Refused(
                    "--guidance-parallel",
                    "splits the work of several processes; start them with torchrun (torchrun --nproc-per-node N "
                    "-m ltx_av generate ...), or leave the flag out",
                )
            return _generate(plan, console)
        return _generate_parallel(plan, console, launch, guidance_parallel)
    finally:
        torch.set_num_threads(threads_before)


def _generate_parallel(plan: Plan, console: Console, launch, guidance_parallel: int | None) -> str:
    """Started by torchrun with several processes: every process samples its share of each step (one GPU per
    process on CUDA, nccl; gloo on the CPU), rank 0 alone reports progress and writes the file."""
    import dataclasses

    import torch

    from .ltx_core import parallel
    from .ltx_core.errors import InputError

    # The official guidance runs 4 passes a step (cond, uncond, STG, modality); the distilled schedule 1.
    passes = 1 if plan.schedule == "distilled" else 4
    try:
        guidance = parallel.guidance_groups(launch.world, guidance_parallel, passes)
    except InputError as e:
        raise Refused("--guidance-parallel", str(e)) from None
    mesh, device = parallel.start(launch, plan.device, guidance, passes)
    if not device.startswith("cuda"):
        # the processes of a node share its cores
        torch.set_num_threads(max(1, plan.threads // int(os.environ.get("LOCAL_WORLD_SIZE", launch.world))))
    if launch.rank != 0:
        console.quiet = True
        logging.getLogger("ltx_av").setLevel(logging.WARNING)
    log.info("%s", parallel.describe(mesh, passes))
    try:
        with parallel.use(mesh):
            return _generate(dataclasses.replace(plan, device=device), console)
    finally:
        parallel.stop()


def _generate(plan: Plan, console: Console) -> str:
    from .ltx_core import demo_model, parallel
    from .ltx_core.audio import limit_peak
    from .ltx_core.media import write_mp4
    from .ltx_core.pipeline import Pipeline, tiny_pipeline

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ltx_av_tiny_") as scratch:
        if plan.checkpoint:
            split = plan.split
            pipe = Pipeline.load(
                plan.checkpoint,
                None if split is not None else plan.gemma,
                text_encoder=split.text_encoder if split is not None else None,
                video_vae=split.video_vae if split is not None else None,
                audio_vae=split.audio_vae if split is not None else None,
                device=plan.device,
                offload=plan.offload,
                upsampler=plan.upsampler,
                loras=plan.loras,
                stage2_loras=plan.stage2_loras,
            )
        elif plan.demo:
            log.info(
                "no --checkpoint: using the built-in demo model (trained on a world of coloured shapes and tones; "
                "its prompts read 'a <colour> <shape> <motion>, <tone>') on %s, %d thread(s)",
                plan.device,
                plan.threads,
            )
            for prompt in plan.prompts or [plan.prompt]:
                warning = demo_model.outside_grammar(prompt)
                if warning is not None:
                    log.warning("%s", warning)
            pipe = demo_model.load(device=plan.device, offload=plan.offload)
        else:
            log.info(
                "no --checkpoint: using the tiny built-in %s model (random weights%s) on %s, %d thread(s)",
                plan.variant,
                ", with a tiny spatial x2 upsampler" if plan.two_stage else "",
                plan.device,
                plan.threads,
            )
            pipe = tiny_pipeline(
                scratch,
                plan.variant,
                device=plan.device,
                offload=plan.offload,
                upsampler=plan.two_stage,
                loras=plan.loras,
                stage2_loras=plan.stage2_loras,
            )
        pipe.transformer.compile_blocks = plan.compile
        if plan.chain is not None:
            return _generate_chain(plan, pipe, console, started)
        if plan.duration_head is not None:
            plan = _predict_frames(plan, pipe)
        result = pipe.generate(
            plan.prompt,
            negative_prompt=plan.negative_prompt,
            width=plan.width,
            height=plan.height,
            frames=plan.frames,
            frame_rate=plan.frame_rate,
            steps=plan.steps,
            schedule=plan.schedule,
            seed=plan.seed,
            image=plan.image,
            image_frame=plan.image_frame,
            two_stage=plan.two_stage,
            stage2_audio=plan.stage2_audio,
            report=console.progress,
        )
    console.end_line()
    if not parallel.is_writer():  # torchrun: rank 0 writes the file
        return plan.output
    replaced = os.path.exists(plan.output)
    waveform, gain = limit_peak(result.waveform)
    _write_atomically(plan, lambda path: write_mp4(path, result.frames, result.frame_rate, waveform,
                                                   result.sample_rate))  # fmt: skip
    seconds = time.perf_counter() - started
    frames, height, width = result.frames.shape[:3]
    shown = plan.prompt if len(plan.prompt) <= 60 else plan.prompt[:59] + "…"
    print(
        f"{shown}: {frames} frames {width}×{height}, {frames / result.frame_rate:.1f} s stereo "
        f"{result.sample_rate / 1000:g} kHz"
    )
    _say_gain(gain)
    print(
        f"wrote {plan.output}{' (replaced the file there)' if replaced else ''} ({frames} frames "
        f"{width}x{height} at {result.frame_rate:g} fps, {result.sample_rate} Hz "
        f"stereo audio) in {seconds:.1f} s"
    )
    return plan.output


def _say_gain(gain: float) -> None:
    """Say that, and by how much, the audio was lowered before writing (see ltx_core.audio.limit_peak)."""
    from .ltx_core.audio import PEAK_DBFS

    if gain:
        print(
            f"the audio peaked at {round(PEAK_DBFS - gain, 1) + 0.0:+.1f} dBFS: lowered by {-gain:.1f} dB to "
            f"{PEAK_DBFS:g} dBFS so the AAC stream does not clip"
        )


def _predict_frames(plan: Plan, pipe) -> Plan:
    """--frames auto: the duration head's length for the prompt, snapped to 8k+1 frames as LTXDurationPredict does,
    printed, and the request checked again with it."""
    import dataclasses

    import torch

    from .ltx_core.duration_head import DEFAULT_MAX_SECONDS, DEFAULT_MIN_SECONDS, load_duration_head, predict_duration
    from .ltx_core.pipeline import check_request

    contexts = pipe.encode(plan.prompt)
    head = load_duration_head(plan.duration_head, dtype=torch.float32, device="cpu")
    (prediction,) = predict_duration(
        head, contexts.video.float().cpu(), contexts.audio.float().cpu(), frame_rate=plan.frame_rate
    )
    fps, frames = plan.frame_rate, prediction.num_frames
    raw = round(prediction.seconds * fps)
    kept = min(max(raw, round(DEFAULT_MIN_SECONDS * fps)), round(DEFAULT_MAX_SECONDS * fps))
    steps = [f"{prediction.seconds:.2f} s", f"{raw} frames at {fps:g} fps"]
    if kept != raw:
        steps.append(f"{kept} (kept within {DEFAULT_MIN_SECONDS:g}..{DEFAULT_MAX_SECONDS:g} s)")
    if frames != kept:
        steps.append(f"{frames} (8k+1)")
    print(f"--frames auto: the duration head predicts {' -> '.join(steps)}; generating {frames} frames")
    request = {k: getattr(plan, k) for k in ("width", "height", "frame_rate", "image_frame")} | {"frames": frames}
    try:
        check_request(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            steps=plan.steps,
            schedule=plan.schedule,
            seed=plan.seed,
            two_stage=plan.two_stage,
            stage2_audio=plan.stage2_audio,
            names={"frames": "--frames", "image_frame": "--image-frame"},
            **request,
        )
    except InputError as e:
        flag = "--image-frame" if str(e).startswith("--image-frame") else "--frames"
        raise Refused(flag, f"{str(e)[len(flag) :].lstrip(': ')} (--frames auto chose {frames})") from None
    _check_memory(request, "--frames")
    # generate encodes this prompt again first thing; Gemma gives the same contexts, so hand back these instead
    # of running it twice (a minute for the 12B model on a CPU).
    encode = pipe.encode
    pipe.encode = lambda prompt: contexts if prompt == plan.prompt else encode(prompt)
    return dataclasses.replace(plan, frames=frames)


def _generate_chain(plan: Plan, pipe, console: Console, started: float) -> str:
    """--seconds: sample the segments one after another, then decode and join them straight into the file."""
    from .ltx_core import parallel
    from .ltx_core.chain import sample_chain, segment_prompts, write_chain

    chain = plan.chain
    log.info("long video: %s", "\n  ".join(chain.describe()))
    sampled = sample_chain(
        pipe,
        chain,
        prompts=plan.prompts,
        negative_prompt=plan.negative_prompt,
        width=plan.width,
        height=plan.height,
        steps=plan.steps,
        schedule=plan.schedule,
        seed=plan.seed,
        image=plan.image,
        image_frame=plan.image_frame,
        report=console.progress,
    )
    if not parallel.is_writer():  # torchrun: rank 0 decodes and writes the file
        return plan.output
    replaced = os.path.exists(plan.output)
    written = []
    _write_atomically(plan, lambda path: written.append(write_chain(pipe, chain, sampled, path, console.progress)))
    console.end_line()
    made = written[0]
    seconds = time.perf_counter() - started
    print(
        f"wrote {plan.output}{' (replaced the file there)' if replaced else ''} ({made.frames} frames "
        f"{made.width}x{made.height} at {made.frame_rate:g} fps, {made.frames / made.frame_rate:.2f} s, "
        f"{made.sample_rate} Hz stereo audio of {made.samples / made.sample_rate:.2f} s) in {seconds:.1f} s"
    )
    _say_gain(made.gain_db)
    lines = chain.describe()
    print(f"long video: {lines[0]}")
    if len(chain.segments) == 1:
        print(
            f"--seconds {chain.seconds:g} is no longer than one segment (--segment-seconds {chain.segment_seconds:g}): "
            "one segment, nothing joined"
        )
    numbers = {text: i + 1 for i, text in reversed(list(enumerate(plan.prompts)))}
    for line, text in zip(lines[1:], segment_prompts(plan.prompts, len(chain.segments)), strict=True):
        shown = text if len(text) <= 40 else text[:39] + "…"
        print(f"{line}; prompt {numbers[text]} {shown!r}")
    return plan.output


def _write_atomically(plan: Plan, write) -> None:
    """Create the missing folders, write into a hidden file beside the output and rename it into place: a failed
    or interrupted write leaves neither a partial .mp4 nor the folders it created, and an existing file is only
    replaced by a complete one."""
    created = []
    partial = None
    try:
        for folder in plan.new_folders:
            os.mkdir(folder)
            created.append(folder)
        fd, partial = tempfile.mkstemp(
            dir=os.path.dirname(plan.output), prefix=f".{os.path.basename(plan.output)}.", suffix=".partial"
        )
        os.close(fd)
        write(partial)
        os.replace(partial, plan.output)
        partial = None
    except BaseException:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        for folder in reversed(created):
            try:
                os.rmdir(folder)
            except OSError:
                pass
        raise


def make_tiny_models(args: argparse.Namespace) -> None:
    from .ltx_core.tiny import check_tiny_targets, write_tiny_models

    folder = os.path.abspath(os.path.expanduser(args.folder))
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise Refused("folder", f"{args.folder!r} is a file; expected a folder laid out like ComfyUI/models")
    check_writable_place(folder, "folder", what="the model files")
    try:
        check_tiny_targets(folder)
    except InputError as e:
        raise Refused("folder", str(e)) from None
    for path in write_tiny_models(folder):
        print(f"wrote {path}")


def train_demo_command(args: argparse.Namespace, console: Console) -> None:
    """train-demo: train the built-in demo model in --work (resumed from its checkpoint there)."""
    import torch

    from .ltx_core.demo_train import STAGES, train_demo

    steps = {}
    for text in args.steps or []:
        stage, _, value = text.partition("=")
        if stage not in STAGES or not value.isdigit() or int(value) < 1:
            raise Refused("--steps", f"{text!r}: expected STAGE=N with N >= 1 and STAGE one of {', '.join(STAGES)}")
        steps[stage] = int(value)
    if args.threads < 1:
        raise Refused("--threads", f"is {args.threads}; expected 1 or more")
    work = os.path.abspath(os.path.expanduser(args.work))
    check_writable_place(os.path.join(work, "state.pt"), "--work", what="the training checkpoint")

    def report(stage: str, done: int, total: int) -> None:
        if done == total or done % max(1, total // 100) == 0:  # about a hundred updates per stage
            console.progress(stage, done, total)

    torch.set_num_threads(args.threads)
    path = train_demo(
        work, steps=steps, seed=args.seed, report=report, stop_after=args.stop_after, processes=args.processes
    )
    console.end_line()
    print(f"wrote {path}" if path else f"stopped after {args.stop_after}; the checkpoint is in {work}")


# -- the parser --------------------------------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Help wrapped to the terminal, with the default of every option in its text; paragraphs whose lines are
    indented (the examples) are kept as written."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=30, width=min(120, _terminal_width()))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if len(lines) > 1 and all(line.startswith(" ") for line in lines[1:]):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(" ".join(lines), width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n\n".join(paragraphs)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors (a bad choice, a word where a number goes) in the same one-line form as ours, with
    the same exit status 2."""

    def error(self, message: str):
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ", message)
        message = re.sub(r"^the following arguments are required: (.+)$", r"\1: missing; it is required", message)
        self.exit(USAGE_ERROR, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.replace("``", "")
    parser = _Parser(prog="python -m ltx_av", description=doc.split("\n\n")[0], formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", parser_class=_Parser)

    gen = sub.add_parser(
        "generate",
        help="text (and optionally an image) -> .mp4 with sound",
        description="Generate a video with its soundtrack and write it as an .mp4 (H.264 + AAC). Without "
        "--checkpoint a tiny built-in model runs on the CPU in seconds: the demo model trained by train-demo when its "
        "files are in ltx_core/demo_model/, else (and with --variant) one with random weights (structured noise).",
        epilog="examples:\n"
        "  python -m ltx_av generate\n"
        "  python -m ltx_av generate --checkpoint ltx-2.3-22b-dev.safetensors \\\n"
        '      --gemma gemma-3-12b-it-qat-q4_0-unquantized --prompt "a cat walks along a beach" --output cat.mp4\n'
        "  python -m ltx_av generate --two-stage --schedule distilled --gemma gemma-3-12b-it-qat-q4_0-unquantized \\\n"
        "      --checkpoint ltx-2.3-22b-distilled.safetensors --upsampler ltx-2.3-spatial-upscaler-x2-1.1.safetensors\n"
        "  python -m ltx_av generate --two-stage --gemma gemma-3-12b-it-qat-q4_0-unquantized \\\n"
        "      --checkpoint ltx-2.3-22b-dev.safetensors --upsampler ltx-2.3-spatial-upscaler-x2-1.1.safetensors \\\n"
        "      --stage2-lora ltx-2.3-22b-distilled-lora-384.safetensors",
        formatter_class=_Formatter,
    )
    what = gen.add_argument_group("what to generate")
    what.add_argument(
        "--prompt",
        action="append",
        metavar="TEXT",
        help="the prompt; with --seconds, repeat it for the segments in order, the last one going on for the rest "
        f"(default: {DEFAULT_PROMPT!r}; {DEMO_PROMPT!r} with the built-in demo model)",
    )
    what.add_argument(
        "--negative-prompt",
        metavar="TEXT",
        help="what to steer away from (default: the official pipelines' negative prompt; a short one for the tiny "
        "model, whose byte tokenizer would cut the official one)",
    )
    what.add_argument(
        "--image", metavar="FILE", help="an image (PNG, JPEG, WebP, ...) that one frame becomes (default: none)"
    )
    what.add_argument(
        "--image-frame",
        type=int,
        metavar="N",
        help="the frame --image becomes; negative counts from the end, -1 is the last; with --seconds, a frame of "
        "the whole video (default: 0, the first)",
    )
    what.add_argument(
        "--width",
        type=int,
        metavar="PX",
        help="a multiple of 32, of 64 with --two-stage (default: 768; 256 with the tiny model)",
    )
    what.add_argument(
        "--height",
        type=int,
        metavar="PX",
        help="a multiple of 32, of 64 with --two-stage (default: 512; 160 with the tiny model, 192 with --two-stage)",
    )
    what.add_argument(
        "--frames",
        type=_frames_value,
        metavar="N|auto",
        help="the length of a single clip, 8k+1: 9, 17, ..., 121, ... (default: 121; 49 with the tiny model); a long "
        "video's length is --seconds instead. auto (LTX-2.5): the duration head predicts it from the prompt (1 to "
        "20 s, snapped to 8k+1 frames at --fps; printed)",
    )
    what.add_argument("--fps", type=float, default=24.0, metavar="RATE", help="frames per second (default: 24)")
    what.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="denoising steps of the ltx2 schedule (default: 30 for LTX-2.3, 40 for LTX-2; 8 with the tiny model)",
    )
    what.add_argument(
        "--schedule",
        default="ltx2",
        choices=("ltx2", "distilled"),
        help="ltx2: --steps with the official guidance, for dev checkpoints; distilled: the 8 fixed steps without "
        "guidance that distilled checkpoints are trained for (default: ltx2)",
    )
    what.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed, 0 to 2^64-1 (default: 0)")
    long = gen.add_argument_group("long videos (segments chained with their sound, joined into one .mp4)")
    long.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="make a video of about S seconds (snapped to 8k+1 frames) in segments: the first lasts --segment-seconds, "
        "each next one continues the last after its end, sharing --overlap-seconds of its picture and sound (kept as "
        "they were) and adding --segment-seconds of new time, with its own --prompt and seed (--seed, --seed + 1, "
        "...); the segments are cross-faded into one .mp4 with one continuous soundtrack, written as it decodes so "
        "memory follows one segment. --image-frame then counts frames of the whole video. Not with --frames or "
        "--two-stage; at most 3600 (default: off, one clip of --frames)",
    )
    long.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="with --seconds: the first segment's length and the new time each later one adds, snapped to whole "
        "latent frames of 8; a shorter --seconds makes one segment (default: 5, as the long-video workflow)",
    )
    long.add_argument(
        "--overlap-seconds",
        type=float,
        metavar="S",
        help="with --seconds: the time each segment shares with the one before, snapped to 8k+1 frames (at least 9) "
        "(default: 1: 25 frames at 24 fps)",
    )
    two = gen.add_argument_group("two-stage generation (the official distilled recipe)")
    two.add_argument(
        "--two-stage",
        action="store_true",
        help="stage 1 at half width and height with --schedule, the latent upsampled x2 by --upsampler, stage 2 at "
        "full size with 3 unguided steps; width and height must be multiples of 64. With a dev checkpoint the "
        "official recipe adds the distilled LoRA in stage 2: --stage2-lora ltx-2.3-22b-distilled-lora-384.safetensors "
        "(default: off)",
    )
    two.add_argument(
        "--upsampler",
        metavar="FILE",
        help="the spatial x2 latent upsampler, e.g. ltx-2.3-spatial-upscaler-x2-1.1.safetensors (required with "
        "--two-stage and --checkpoint; the tiny model brings its own)",
    )
    two.add_argument(
        "--stage2-audio",
        choices=("refine", "keep"),
        help="the soundtrack of a two-stage run: refine: the stage-1 audio refined with the video in stage 2 "
        "(ltx-pipelines 1.0.0); keep: the stage-1 audio as it was (1.2.0); the video is the same either way "
        "(default: refine)",
    )
    loras = gen.add_argument_group("LoRAs (applied as the model runs; the loaded weights are never changed)")
    loras.add_argument(
        "--lora",
        action="append",
        metavar="FILE[:STRENGTH]",
        help="a LoRA .safetensors made for the checkpoint's version, in every stage, at STRENGTH (-10 to 10; 1 is "
        "the LoRA as trained, 0 switches it off); repeat for several, their changes add up (default: none; "
        "strength 1)",
    )
    loras.add_argument(
        "--stage2-lora",
        action="append",
        metavar="FILE[:STRENGTH]",
        help="a LoRA for stage 2 of --two-stage only, on top of any --lora: the official dev recipe refines with "
        "the distilled LoRA, e.g. ltx-2.3-22b-distilled-lora-384.safetensors (ltx-pipelines' --distilled-lora); "
        "repeatable (default: none; strength 1)",
    )
    what.add_argument(
        "--output",
        metavar="FILE.mp4",
        help="where to write the video; missing folders are created, an existing file is replaced "
        "(default: ./ltx_av_<date>_<time>.mp4)",
    )
    models = gen.add_argument_group("models and hardware")
    models.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="an official LTX-2 / LTX-2.3 .safetensors checkpoint, or LTX-2.5's transformer file (its other files "
        "are found beside it in the ComfyUI models layout: ../text_encoders, ../vae; or named below) (default: the "
        "tiny built-in model)",
    )
    models.add_argument(
        "--gemma",
        metavar="PATH",
        help="Gemma 3 12B: a Hugging Face folder, a .safetensors or a .gguf file (required with an LTX-2 / LTX-2.3 "
        "--checkpoint)",
    )
    for flag, what in (
        ("--text-encoder", "the Gemma 4 text encoder (gemma4-12b-with-proj-ltx-2.5-bf16.safetensors)"),
        ("--video-vae", "the video VAE (ltx-2.5-video-vae-bf16.safetensors, or the -conv one)"),
        ("--audio-vae", "the audio VAE (ltx-2.5-audio-vae-bf16.safetensors)"),
    ):
        models.add_argument(
            flag, metavar="FILE", help=f"LTX-2.5: {what} (default: found beside the --checkpoint transformer)"
        )
    models.add_argument(
        "--duration-head",
        metavar="FILE",
        help=f"LTX-2.5 with --frames auto: the duration head ({DURATION_HEAD_FILE}) (default: found beside the "
        "--checkpoint transformer or in ../model_patches)",
    )
    models.add_argument(
        "--variant",
        choices=("LTX-2", "LTX-2.3"),
        help="without --checkpoint: the tiny model with random weights of this version (default: the trained demo "
        "model when its files are in ltx_core/demo_model/, else LTX-2.3's; with --checkpoint the file decides)",
    )
    models.add_argument(
        "--device",
        metavar="DEVICE",
        help="cpu, cuda or cuda:N (default: cuda when available with --checkpoint; cpu for the tiny model)",
    )
    models.add_argument(
        "--offload",
        default="none",
        choices=("none", "blocks"),
        help="blocks: keep the transformer in system RAM and stream its blocks to the GPU one at a time (needs a "
        "CUDA device; default: none)",
    )
    models.add_argument(
        "--compile",
        action="store_true",
        help="run the transformer blocks through torch.compile: faster steps on a GPU once compiled; the first step "
        "of each size compiles (minutes for the full model)",
    )
    models.add_argument(
        "--threads",
        type=int,
        default=_pick_threads(),
        metavar="N",
        help="CPU threads for torch (default: %(default)s here, the cores less one; more threads than idle cores "
        "makes a shared machine many times slower)",
    )
    models.add_argument(
        "--guidance-parallel",
        type=int,
        metavar="N",
        help="under torchrun with several processes (torchrun --nproc-per-node P -m ltx_av generate ...): how many "
        "process groups share a step's guidance passes; the P/N processes of each group split the video tokens "
        "(default: the largest divisor of P that is at most the step's passes, 4 with guidance, 1 distilled)",
    )
    gen.add_argument("-q", "--quiet", action="store_true", help="print only warnings, errors and the result")

    tiny = sub.add_parser(
        "make-tiny-models",
        help="write tiny stand-in model files for the example workflows",
        description="Write tiny random-weight stand-ins under the file names the example workflows use "
        "(checkpoints/ltx-2.3-22b-dev.safetensors, ..., text_encoders/gemma-3-12b-it-qat-q4_0-unquantized/, "
        "latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors, ...), to try a graph before "
        "downloading the real models. Stand-ins written earlier are replaced; any other checkpoint or Gemma of 1 "
        "GiB or more, or upsampler of 64 MiB or more, is never touched (the run stops instead).",
        formatter_class=_Formatter,
    )
    tiny.add_argument("folder", help="a folder laid out like ComfyUI/models (created if missing)")

    demo = sub.add_parser(
        "train-demo",
        help="train the built-in demo model on its procedural world (CPU)",
        description="Train every part of the built-in demo model (video VAE, audio VAE, vocoder, text connectors, "
        "transformer) from scratch on the procedural world of coloured shapes and tones, in stages, on the CPU. "
        "A checkpoint in --work is written every two minutes and after every stage; running the command again "
        "goes on from it. The result is ltx-2.3-demo.safetensors beside its Gemma stand-in gemma-demo/ in --work.",
        formatter_class=_Formatter,
    )
    demo.add_argument("--work", default="ltx_av_demo_train", help="the folder of the checkpoint and the result")
    demo.add_argument(
        "--steps", action="append", metavar="STAGE=N", help="steps of one stage instead of its default (repeatable)"
    )
    demo.add_argument("--seed", type=int, default=0, metavar="N", help="the seed everything follows from")
    demo.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="torch threads; the toy models gain little from more, and one keeps a shared machine responsive",
    )
    demo.add_argument(
        "--processes",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: train the audio VAE and the vocoder in a second process (one thread) while the video VAE trains "
        "(one thread): the same model, its first three stages in the video VAE's time (28 min instead of 45 on two "
        "free cores)",
    )
    demo.add_argument(
        "--stop-after",
        choices=("video_vae", "audio_vae", "vocoder", "video_clips", "latents", "transformer", "pure_noise", "settle"),
        help="stop after this stage (default: train them all and write the model)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(quiet=getattr(args, "quiet", False))
    _setup_logging(console, console.quiet)
    from .ltx_core.errors import LTXError

    try:
        if args.command == "generate":
            plan = plan_generate(args)
            generate(plan, console, args.guidance_parallel)
        elif args.command == "train-demo":
            train_demo_command(args, console)
        else:
            make_tiny_models(args)
    except Refused as e:
        console.end_line()
        _fail(USAGE_ERROR, str(e))
    except LTXError as e:  # our errors already say what was given and what is allowed: no traceback
        console.end_line()
        _fail(USAGE_ERROR, str(e))
    except OSError as e:  # the disk filled up, a folder vanished: the run failed, not the arguments
        console.end_line()
        _fail(RUN_FAILED, f"{e.strerror or e}{f': {e.filename!r}' if e.filename else ''}; nothing was written")
    except KeyboardInterrupt:
        console.end_line()
        _fail(INTERRUPTED, "interrupted; nothing was written")


def _fail(status: int, message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(status)


if __name__ == "__main__":
    main()
