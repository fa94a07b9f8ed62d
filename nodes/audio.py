"""Audio nodes: load the audio VAE + vocoder (``LTX_AUDIO_VAE``), decode audio latents to AUDIO, encode AUDIO.

Audio LATENT: ``{"samples": [B, 8, T, 16] float32, "type": "audio"}`` plus optional extras this module writes and
reads: ``"frame_rate"`` (fps of the video the audio belongs to) and ``"duration"`` (seconds of real audio the
latent stands for). Decoding trims the waveform to ``"duration"`` when the latent still has the length that
duration implies (within one latent frame); any other keys pass through core latent nodes untouched.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from ..ltx_core import checks
from ..ltx_core.audio import (
    check_audio_latent,
    check_sample_rate,
    check_waveform,
    decode_audio,
    decode_bytes,
    decoded_seconds,
    encode_audio,
    encode_bytes,
    trim_to_duration,
)
from ..ltx_core.audio_vae import AudioVAE, load_audio_vae
from ..ltx_core.checkpoint import Checkpoint, open_checkpoint
from ..ltx_core.errors import CheckpointError, InputError, TooLargeError
from ..ltx_core.latents import audio_latent_length
from ..ltx_core.vocoder import load_vocoder
from . import host
from .dtypes import VAE_DTYPES, vae_dtype
from .validation import (
    check_release,
    checked,
    find_model_file,
    is_latent,
    model_choices,
    nested_part,
    record_release,
    register_socket,
)

log = logging.getLogger("ltx_av.nodes.audio")
# An official checkpoint holds the audio VAE; LTX-2.5 ships it as its own file in models/vae.
AUDIO_FOLDERS = ("checkpoints", "vae")


class LoadedAudioVAE:
    """The ``LTX_AUDIO_VAE`` value: the audio VAE and the vocoder of one checkpoint.

    Python API for other nodes and scripts (all tensors returned float32 on the host's intermediate device):

    - ``encode_waveform(waveform [B, C, N], sample_rate, latent_frames=None) -> latent [B, 8, T, 16]``
    - ``decode(latent [B, 8, T, 16]) -> (waveform [B, 2, N], sample_rate)``
    - ``latent_length(frames, frame_rate) -> int``: audio latents spanning a video (``round(F / fps * 25)``)
    - ``empty_latent(frames, frame_rate, batch_size=1) -> LATENT dict`` of zeros with ``frame_rate`` and
      ``duration`` set
    - attributes ``sample_rate`` (decoded audio, 24000 or 48000), ``latents_per_second`` (25.0),
      ``latent_channels`` (8), ``latent_mel_bins`` (16), ``variant``, ``checkpoint``

    Weights wait on the offload device and move to the compute device for each call. The vocoder is float32
    whatever the VAE's dtype.
    """

    def __init__(
        self,
        vae: AudioVAE,
        vocoder: torch.nn.Module,
        *,
        variant: str,
        checkpoint: str,
        device: torch.device,
        offload_device: torch.device,
        releases: frozenset[str] | None = None,
    ):
        self.vae = vae
        self.vocoder = vocoder
        self.variant = variant
        self.checkpoint = checkpoint
        # the releases the file can belong to (an audio VAE file that names none fits LTX-2.3 and LTX-2.5)
        self.releases = releases if releases is not None else frozenset((variant,))
        self.device = device
        self.offload_device = offload_device
        self.weights = host.ModuleWeights("LTXAVAudioVAE", [vae, vocoder], device, offload_device)

    @property
    def sample_rate(self) -> int:
        return self.vocoder.sample_rate

    @property
    def latents_per_second(self) -> float:
        return self.vae.latents_per_second

    @property
    def latent_channels(self) -> int:
        return self.vae.config.z_channels

    @property
    def latent_mel_bins(self) -> int:
        return self.vae.latent_mel_bins

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def latent_length(self, frames: int, frame_rate: float) -> int:
        """Audio latent frames that span ``frames`` video frames at ``frame_rate`` fps."""
        return audio_latent_length(frames, frame_rate, self.latents_per_second)

    def empty_latent(self, frames: int, frame_rate: float, batch_size: int = 1) -> dict:
        """A zero audio LATENT for a video of ``frames`` frames at ``frame_rate`` fps."""
        length = self.latent_length(frames, frame_rate)
        samples = torch.zeros(batch_size, self.latent_channels, length, self.latent_mel_bins)
        return {"samples": samples, "type": "audio", "frame_rate": float(frame_rate), "duration": frames / frame_rate}

    @contextmanager
    def _in_use(self):
        with self.weights.in_use():
            yield

    def encode_waveform(
        self, waveform: torch.Tensor, sample_rate: int, latent_frames: int | None = None, name: str = "audio"
    ) -> torch.Tensor:
        """Waveform ``[B, C, N]`` (any rate, any channel count; see ``ltx_core.audio``) -> latent ``[B, 8, T, 16]``
        with ``T = N16k // 640 + 1``, or exactly ``latent_frames`` (cropped, or silence-padded audio).

        Refused before any work (:class:`TooLargeError`) when the estimated working memory does not fit."""
        check_waveform(waveform, sample_rate, name)  # type, shape and rate; the samples are read after the estimate
        rate = check_sample_rate(sample_rate, f"{name} sample_rate")
        samples = waveform.shape[-1]
        if latent_frames is not None:
            # only what the latent needs is encoded (see encode_audio)
            per_latent = self.vae.config.mel_hop_length * self.vae.compression
            samples = min(samples, -(-(latent_frames + 2) * per_latent * rate // self.vae.config.sampling_rate))
        checks.fits_memory(
            encode_bytes(self.vae, waveform.shape[0], samples, rate),
            host.available_memory(self.device),
            f"{name}: encoding {waveform.shape[0]} x {samples / rate:.1f} s at {rate} Hz",
            advice="encode a shorter clip (or set video_frames to encode only what the video needs)",
        )
        with self._in_use(), torch.no_grad():
            try:
                latent = encode_audio(self.vae, waveform, sample_rate, latent_frames=latent_frames, name=name)
            except Exception as error:
                if host.is_out_of_memory(error):
                    raise TooLargeError(
                        f"encoding {name} ran out of memory on {self.device}; encode a shorter clip"
                    ) from error
                raise
        return latent.to(device=host.intermediate_device(), dtype=torch.float32)

    def decode(
        self, latent: torch.Tensor, progress: host.Progress | None = None, name: str = "samples"
    ) -> tuple[torch.Tensor, int]:
        """Latent ``[B, 8, T, 16]`` -> (waveform ``[B, 2, (4T - 3) * hop]`` float32, sample rate).

        Refused before any work (:class:`TooLargeError`) when the estimated working memory does not fit."""
        latent = check_audio_latent(latent, self.vae, name, scan=False)
        seconds = self.decoded_seconds(latent.shape[2])
        checks.fits_memory(
            decode_bytes(self.vae, self.vocoder, latent.shape[0], latent.shape[2]),
            host.available_memory(self.device),
            f"{name}: decoding {latent.shape[0]} x {seconds:.1f} s of audio",
            advice="decode a shorter latent (core latent nodes can slice it)",
        )
        check_audio_latent(latent, self.vae, name)
        with self._in_use(), torch.no_grad():
            try:
                waveform = decode_audio(
                    self.vae, self.vocoder, latent, progress=progress.callback() if progress is not None else None
                )
            except Exception as error:
                if host.is_out_of_memory(error):
                    raise TooLargeError(
                        f"decoding {seconds:.1f} s of audio ran out of memory on {self.device}; decode a shorter "
                        "latent or free GPU memory (other models, other programs)"
                    ) from error
                raise
        return waveform.to(host.intermediate_device()), self.sample_rate

    def decoded_seconds(self, latent_frames: int) -> float:
        """Length of the audio decoded from ``latent_frames`` latents: ``(4T - 3)`` mel frames of 10 ms."""
        return decoded_seconds(latent_frames, self.vae)

    def __repr__(self) -> str:
        return (
            f"LoadedAudioVAE({self.variant}, {self.checkpoint!r}, {self.sample_rate} Hz, VAE "
            f"{str(self.dtype).removeprefix('torch.')}, vocoder float32, on {self.device})"
        )


def load_audio(
    checkpoint: str | Checkpoint,
    *,
    dtype: str = "auto",
    device: torch.device | None = None,
    offload_device: torch.device | None = None,
) -> LoadedAudioVAE:
    """Audio VAE (encoder + decoder) and vocoder from an official checkpoint; keys are checked strictly."""
    device = torch.device(device) if device is not None else host.compute_device()
    offload_device = torch.device(offload_device) if offload_device is not None else host.offload_device()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint)
    if "audio_vae" not in ckpt.identity.components:
        raise CheckpointError(
            f"{ckpt.identity.describe()} holds no audio VAE; pick an LTX checkpoint or an audio VAE file"
        )
    vae = load_audio_vae(ckpt, dtype=vae_dtype(dtype, device), device=offload_device)
    vocoder = load_vocoder(ckpt, device=offload_device)
    loaded = LoadedAudioVAE(
        vae,
        vocoder,
        variant=ckpt.variant_name,
        checkpoint=ckpt.name,
        device=device,
        offload_device=offload_device,
        releases=ckpt.identity.variants,
    )
    log.info("loaded %r", loaded)
    return loaded


def _audio_latent_tensor(latent: object, node: str) -> torch.Tensor:
    if not is_latent(latent):
        got = "nothing (None)" if latent is None else f"a {type(latent).__name__}"
        raise InputError(f"{node}: samples must be a LATENT (a dict with a 'samples' tensor); got {got}")
    # newer ComfyUI holds video + audio in one NestedTensor (core LTXVConcatAVLatent): decode its audio part. The
    # shape tells what a latent is (core's LTXVSeparateAVLatent gives both parts the joint latent's "type").
    samples = nested_part(latent["samples"], -1)
    if getattr(samples, "ndim", 0) == 5:
        raise InputError(
            f"{node}: samples is a video latent {list(samples.shape)}; decode it with Video Decode, and give "
            "this node an audio latent ([batch, 8, frames, 16]: the sampler's audio_latent, Audio Encode, or "
            "core's LTXVEmptyLatentAudio / LTXVAudioVAEEncode)"
        )
    return samples


class LTXAudioVAELoader:
    DISPLAY_NAME = "Load Audio VAE + Vocoder"
    CATEGORY = "LTX-AV/loaders"
    DESCRIPTION = (
        "Loads the audio VAE and the vocoder from an official LTX-2 / LTX-2.3 checkpoint or LTX-2.5's audio VAE "
        "file: LTX-2 decodes to 24 kHz (HiFi-GAN), LTX-2.3 and 2.5 to 48 kHz (BigVGAN + bandwidth extension). "
        "Every key is checked against the file's config."
    )
    RETURN_TYPES = ("LTX_AUDIO_VAE",)
    RETURN_NAMES = ("audio_vae",)
    OUTPUT_TOOLTIPS = ("Audio VAE + vocoder for LTX-AV audio encode/decode.",)
    FUNCTION = "load"
    FILE_INPUTS = ("ckpt_name",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "ckpt_name": (
                    model_choices(AUDIO_FOLDERS),
                    {
                        "tooltip": "The LTX-2 / LTX-2.3 checkpoint (.safetensors) from models/checkpoints, or an "
                        "audio VAE file from models/vae (LTX-2.5: ltx-2.5-audio-vae-bf16.safetensors)."
                    },
                ),
                "dtype": (
                    list(VAE_DTYPES),
                    {
                        "default": "auto",
                        "tooltip": "Precision of the audio VAE. auto: bf16 on NVIDIA GPUs that support it, else "
                        "fp32. The vocoder always runs in fp32.",
                    },
                ),
            }
        }

    @checked
    def load(self, ckpt_name: str, dtype: str = "auto"):
        path = find_model_file("LTXAudioVAELoader", "ckpt_name", AUDIO_FOLDERS, ckpt_name)
        return (load_audio(path, dtype=dtype),)


class LTXAudioDecode:
    DISPLAY_NAME = "Audio Decode"
    CATEGORY = "LTX-AV/audio"
    DESCRIPTION = (
        "Decodes an LTX audio latent [B, 8, frames, 16] to stereo audio (24 kHz for LTX-2, 48 kHz for LTX-2.3). "
        "T latent frames give (4T - 3) x 10 ms of sound; if the latent records its duration, the audio is trimmed "
        "to it."
    )
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Stereo waveform [B, 2, samples] with its sample rate.",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_vae": ("LTX_AUDIO_VAE", {"tooltip": "From Load Audio VAE + Vocoder (same checkpoint family)."}),
                "samples": ("LATENT", {"tooltip": "Audio latent from the LTX-AV sampler or Audio Encode."}),
            }
        }

    @checked
    def decode(self, audio_vae: LoadedAudioVAE, samples: dict):
        latent = _audio_latent_tensor(samples, "LTXAudioDecode")
        check_release(samples, audio_vae, "LTXAudioDecode", "samples", "audio_vae")
        waveform, rate = audio_vae.decode(latent, progress=host.Progress(2), name="LTXAudioDecode: samples")
        duration = samples.get("duration")
        if isinstance(duration, (int, float)) and duration > 0:
            produced = audio_vae.decoded_seconds(latent.shape[2])
            if 0 < produced - duration < 1 / audio_vae.latents_per_second:
                waveform = trim_to_duration(waveform, rate, duration)
            elif produced - duration >= 1 / audio_vae.latents_per_second:
                log.info(
                    "latent records %.3f s but decodes to %.3f s (it was lengthened); not trimming", duration, produced
                )
        return ({"waveform": waveform, "sample_rate": rate},)


class LTXAudioEncode:
    DISPLAY_NAME = "Audio Encode"
    CATEGORY = "LTX-AV/audio"
    DESCRIPTION = (
        "Encodes audio (any sample rate; mono is duplicated to stereo; with more than 2 channels the first two "
        "are used) to an LTX audio latent [B, 8, frames, 16] at 25 latent frames per second. Set video_frames to "
        "get exactly the latent length of a video of that many frames at frame_rate (longer audio is cut, "
        "shorter audio is padded with silence)."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("samples",)
    OUTPUT_TOOLTIPS = ("Audio latent {'samples': [B, 8, frames, 16], 'type': 'audio'}.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_vae": ("LTX_AUDIO_VAE", {"tooltip": "From Load Audio VAE + Vocoder."}),
                "audio": ("AUDIO", {"tooltip": "Audio to encode, e.g. from Load Audio."}),
            },
            "optional": {
                "video_frames": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 100000,
                        "step": 1,
                        "tooltip": "0: encode the whole clip. Otherwise the number of video frames the audio must "
                        "span; the latent gets round(video_frames / frame_rate * 25) frames.",
                    },
                ),
                "frame_rate": (
                    "FLOAT",
                    {
                        "default": 24.0,
                        "min": 1.0,
                        "max": 240.0,
                        "step": 0.001,
                        "tooltip": "Frame rate of that video (fps); used only when video_frames > 0.",
                    },
                ),
            },
        }

    @checked
    def encode(self, audio_vae: LoadedAudioVAE, audio: dict, video_frames: int = 0, frame_rate: float = 24.0):
        node = "LTXAudioEncode"
        waveform, rate = audio["waveform"], audio["sample_rate"]
        check_waveform(waveform, rate, f"{node}: audio")  # checked before anything is estimated or allocated
        rate = check_sample_rate(rate, f"{node}: audio sample_rate")
        out: dict = {"type": "audio"}
        frames = None
        if video_frames > 0:
            frames = audio_vae.latent_length(video_frames, frame_rate)
            out.update(frame_rate=float(frame_rate), duration=video_frames / frame_rate)
        else:
            out["duration"] = waveform.shape[-1] / rate
        out["samples"] = audio_vae.encode_waveform(waveform, rate, latent_frames=frames, name=f"{node}: audio")
        return (record_release(out, audio_vae.releases, audio_vae.checkpoint),)


register_socket("LTX_AUDIO_VAE", LoadedAudioVAE, "the audio VAE from Load Audio VAE + Vocoder")

NODES: tuple[type, ...] = (LTXAudioVAELoader, LTXAudioDecode, LTXAudioEncode)
