"""Typed architecture configs, one frozen dataclass per component, read from a checkpoint's metadata.

An official LTX-2 / LTX-2.3 single file carries its architecture as JSON in ``metadata["config"]`` with the
sections ``transformer``, ``vae``, ``audio_vae`` and ``vocoder``; the LTX-2.5 release is split into one file per
component, each with the sections of its own part (the transformer file: ``transformer``). Field names follow those
JSON keys so an error can name the key the user would find in the file. Where a key is absent we use the value the
official implementation uses for an absent key, because that is what the same file means there: ltx-core 1.0.0 for
LTX-2 / LTX-2.3, ltx-core 1.2.0 (the only release that runs it) for LTX-2.5. A value we do not support raises
:class:`ConfigError` naming the key.

Which release a file belongs to is read from its config (the transformer's layout, :func:`transformer_variant`; the
video VAE's class) and from ``metadata["model_version"]`` (``"2.5.0"`` on the LTX-2.5 files,
:func:`variant_of_version`); ``checkpoint.Checkpoint.variants`` weighs them for a whole file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

LTX2 = "LTX-2"
LTX23 = "LTX-2.3"
LTX25 = "LTX-2.5"
VARIANTS = (LTX2, LTX23, LTX25)

# Values the official implementation requires in the transformer section; any other value would describe a
# different network than the one implemented here.
TRANSFORMER_FIXED_VALUES: dict[str, Any] = {
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
    "use_middle_indices_grid": True,
}

# LTX-2.3 moved the caption projection from the transformer into the text path. The switch is spelled as four
# keys that only ever appear together with these values.
_TEXT_PATH_V2_VALUES: dict[str, bool] = {
    "caption_proj_before_connector": True,
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
}

# Keys LTX-2.5 added to the transformer section (ltx-core 1.2.0 reads an absent one as the LTX-2.3 value). Any of
# them away from that value marks a 2.5-generation network; the released 2.5 files set ff_bias false and
# use_keyframes_abs_pos_embedding true.
_LTX25_TRANSFORMER_KEYS: dict[str, bool] = {
    "ff_bias": True,
    "audio_ff_bias": True,
    "use_prompt_adaln_single": True,
    "use_keyframes_abs_pos_embedding": False,
}

# The video VAE class whose decoder is a diffusion model (only LTX-2.5 ships one); the convolutional VAE of every
# release is "CausalVideoAutoencoder".
DIFFUSION_VAE_CLASS = "CausalDiffusionVAE"
CONV_VAE_CLASS = "CausalVideoAutoencoder"

# Gemma 3 12B, the text encoder of both LTX-2 and LTX-2.3: its hidden width, used when the file does not say.
GEMMA3_12B_HIDDEN_SIZE = 3840

# The largest whole number a config may give for a size, count or rate. Released files stay below 10**5; anything
# near this bound describes no real network (and would overflow the int64 sizes of the tensors built from it).
MAX_CONFIG_INT = 2**31 - 1
# The longest list a config may hold (block lists, upsample rates, ...). Released files list at most a dozen.
MAX_CONFIG_LIST = 1024


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _whole(value: Any) -> bool:
    """An int, or a finite float without a fraction (JSON writers spell 2 as 2.0); never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value == int(value)


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range
        return math.inf


class _Section:
    """Reads typed values out of one JSON section and names the section in every error."""

    def __init__(self, name: str, values: Mapping[str, Any]):
        if not isinstance(values, Mapping):
            raise ConfigError(f"config section '{name}' should be a JSON object, found {type(values).__name__}")
        self.name = name
        self.values = values

    def _fail(self, key: str, value: Any, wanted: str) -> ConfigError:
        return ConfigError(f"config key '{self.name}.{key}' is {_shown(value)}; expected {wanted}")

    def has(self, key: str) -> bool:
        return key in self.values

    def int(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.values.get(key, default)
        if value is None:
            raise ConfigError(f"config key '{self.name}.{key}' is missing and has no default")
        if not _whole(value):
            raise self._fail(key, value, "an integer")
        if not minimum <= value <= MAX_CONFIG_INT:
            raise self._fail(key, value, f"an integer from {minimum} to {MAX_CONFIG_INT}")
        return int(value)

    def optional_int(self, key: str) -> int | None:
        return self.int(key) if self.values.get(key) is not None else None

    def float(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(_as_float(value)):
            raise self._fail(key, value, "a finite number")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, value, "true or false")
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.values.get(key, default)
        if value not in allowed:
            raise self._fail(key, value, "one of " + ", ".join(repr(a) for a in allowed))
        return value

    def ints(
        self, key: str, default: tuple[int, ...] | None = None, length: int | None = None, minimum: int = 1
    ) -> tuple[int, ...]:
        value = self.values.get(key, default)
        if value is None:
            raise ConfigError(f"config key '{self.name}.{key}' is missing and has no default")
        wanted = f"a list of integers from {minimum} to {MAX_CONFIG_INT}"
        self._check_length(key, value)
        if not isinstance(value, (list, tuple)) or not all(_whole(v) and minimum <= v <= MAX_CONFIG_INT for v in value):
            raise self._fail(key, value, wanted)
        if length is not None and len(value) != length:
            raise self._fail(key, value, f"a list of {length} integers")
        return tuple(int(v) for v in value)

    def int_lists(self, key: str, default: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
        value = self.values.get(key, default)
        self._check_length(key, value)
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (list, tuple))
            and len(v) <= MAX_CONFIG_LIST
            and all(_whole(x) and 1 <= x <= MAX_CONFIG_INT for x in v)
            for v in value
        ):
            raise self._fail(key, value, f"a list of lists of integers from 1 to {MAX_CONFIG_INT}")
        return tuple(tuple(int(x) for x in v) for v in value)

    def _check_length(self, key: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and len(value) > MAX_CONFIG_LIST:
            raise ConfigError(
                f"config key '{self.name}.{key}' lists {len(value):,} entries; expected at most {MAX_CONFIG_LIST}"
            )

    def sub(self, key: str) -> _Section:
        return _Section(f"{self.name}.{key}", self.values.get(key) or {})


# ---------------------------------------------------------------------------------------------------------------
# Transformer


@dataclass(frozen=True)
class TransformerConfig:
    """The dual-stream audio-video DiT (``config["transformer"]``)."""

    num_layers: int
    num_attention_heads: int
    attention_head_dim: int
    audio_num_attention_heads: int
    audio_attention_head_dim: int
    in_channels: int
    out_channels: int
    audio_in_channels: int
    audio_out_channels: int
    cross_attention_dim: int
    audio_cross_attention_dim: int
    caption_channels: int | None
    norm_eps: float
    positional_embedding_theta: float
    positional_embedding_max_pos: tuple[int, ...]
    audio_positional_embedding_max_pos: tuple[int, ...]
    timestep_scale_multiplier: float
    av_ca_timestep_scale_multiplier: float
    rope_type: str
    rope_float64: bool
    apply_gated_attention: bool
    cross_attention_adaln: bool
    caption_proj_before_connector: bool
    # LTX-2.5: the video (and optionally audio) feed-forward without biases, the prompt AdaLN reduced to its static
    # table (False: the text keys/values no longer depend on the timestep), and a learned vector added to the
    # tokens that encode one standalone pixel frame (see AudioVideoTransformer).
    ff_bias: bool = True
    audio_ff_bias: bool = True
    use_prompt_adaln_single: bool = True
    use_keyframes_abs_pos_embedding: bool = False
    # The release this network belongs to (LTX2 / LTX23 / LTX25): it picks the conventions of the implementation
    # that runs it (ltx-core 1.0.0 for LTX-2 and LTX-2.3, 1.2.0 for LTX-2.5).
    variant: str = LTX23

    @property
    def video_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def audio_dim(self) -> int:
        return self.audio_num_attention_heads * self.audio_attention_head_dim

    @property
    def text_path_version(self) -> int:
        """1: LTX-2 (caption projection inside the transformer); 2: LTX-2.3 (projection in the text path)."""
        return 2 if self.caption_proj_before_connector else 1

    @property
    def adaln_coefficients(self) -> int:
        """Rows of per-token modulation per block: 6, plus 3 for the text cross-attention with prompt AdaLN."""
        return 9 if self.cross_attention_adaln else 6

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], model_version: str | None = None) -> TransformerConfig:
        """``model_version``: the file's ``metadata["model_version"]``, which names the release when the section
        alone does not (it decides the defaults of absent keys)."""
        s = _Section("transformer", values)
        for key, expected in TRANSFORMER_FIXED_VALUES.items():
            if s.has(key) and s.values[key] != expected:
                raise ConfigError(
                    f"config key 'transformer.{key}' is {s.values[key]!r}; LTX-2, LTX-2.3 and LTX-2.5 use "
                    f"{expected!r}, so this file describes a different network"
                )
        for key, default in _LTX25_TRANSFORMER_KEYS.items():
            s.bool(key, default)
        variant = transformer_variant(values, model_version)
        text_v2 = _text_path_is_v2(s)
        caption_channels = s.optional_int("caption_channels")
        if not text_v2 and caption_channels is None:
            raise ConfigError(
                "config key 'transformer.caption_channels' is missing; LTX-2 checkpoints need it to size the caption "
                "projection"
            )
        precision = s.values.get("frequencies_precision")
        if precision not in (None, False, "float32", "float64"):
            raise s._fail("frequencies_precision", precision, "'float32' or 'float64'")
        return cls(
            num_layers=s.int("num_layers", 48),
            num_attention_heads=s.int("num_attention_heads", 32),
            attention_head_dim=s.int("attention_head_dim", 128),
            audio_num_attention_heads=s.int("audio_num_attention_heads", 32),
            audio_attention_head_dim=s.int("audio_attention_head_dim", 64),
            in_channels=s.int("in_channels", 128),
            out_channels=s.int("out_channels", 128),
            audio_in_channels=s.int("audio_in_channels", 128),
            audio_out_channels=s.int("audio_out_channels", 128),
            cross_attention_dim=s.int("cross_attention_dim", 4096),
            audio_cross_attention_dim=s.int("audio_cross_attention_dim", 2048),
            caption_channels=caption_channels,
            norm_eps=s.float("norm_eps", 1e-6),
            positional_embedding_theta=s.float("positional_embedding_theta", 10000.0),
            positional_embedding_max_pos=s.ints("positional_embedding_max_pos", (20, 2048, 2048), length=3),
            audio_positional_embedding_max_pos=s.ints("audio_positional_embedding_max_pos", (20,), length=1),
            timestep_scale_multiplier=s.float("timestep_scale_multiplier", 1000.0),
            # ltx-core reads an absent value as 1; released files say 1000.
            av_ca_timestep_scale_multiplier=s.float("av_ca_timestep_scale_multiplier", 1.0),
            # Absent, ltx-core 1.0.0 means "interleaved" and 1.2.0 "split"; released files say "split".
            rope_type=s.choice("rope_type", "split" if variant == LTX25 else "interleaved", ("interleaved", "split")),
            rope_float64=precision == "float64",
            apply_gated_attention=s.bool("apply_gated_attention", False),
            cross_attention_adaln=s.bool("cross_attention_adaln", False),
            caption_proj_before_connector=text_v2,
            ff_bias=s.bool("ff_bias", True),
            audio_ff_bias=s.bool("audio_ff_bias", True),
            use_prompt_adaln_single=s.bool("use_prompt_adaln_single", True),
            use_keyframes_abs_pos_embedding=s.bool("use_keyframes_abs_pos_embedding", False),
            variant=variant,
        )


def _text_path_is_v2(s: _Section) -> bool:
    present = [k for k in _TEXT_PATH_V2_VALUES if s.has(k)]
    if not present:
        return False
    missing = [k for k in _TEXT_PATH_V2_VALUES if not s.has(k)]
    if missing:
        raise ConfigError(
            "config section 'transformer' sets "
            + ", ".join(present)
            + " but not "
            + ", ".join(missing)
            + "; LTX-2.3 files set all four"
        )
    wrong = {k: s.values[k] for k, v in _TEXT_PATH_V2_VALUES.items() if s.values[k] != v}
    if wrong:
        raise ConfigError(
            "config section 'transformer' describes an unknown text-projection layout: "
            + ", ".join(f"{k}={v!r} (LTX-2.3 uses {_TEXT_PATH_V2_VALUES[k]!r})" for k, v in wrong.items())
        )
    return True


# ---------------------------------------------------------------------------------------------------------------
# Text path: Gemma feature extractor + embeddings connectors


@dataclass(frozen=True)
class ConnectorConfig:
    """One embeddings connector (a small 1-D transformer with learnable registers) of the text path."""

    num_attention_heads: int
    attention_head_dim: int
    num_layers: int
    positional_embedding_max_pos: tuple[int, ...]
    apply_gated_attention: bool
    rope_type: str
    rope_float64: bool
    # ``connector_ff_bias`` (ltx-core 1.2.0; absent in every released file so far, which means biases).
    ff_bias: bool = True
    # The reference builds connectors with its default theta, whatever the transformer's theta says.
    positional_embedding_theta: float = 10000.0
    num_registers: int = 128

    @property
    def dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim


@dataclass(frozen=True)
class TextEncoderConfig:
    """Gemma hidden states -> per-stream text contexts (``text_embedding_projection.*`` + both connectors).

    ``version`` 1 is LTX-2 (mean/range normalisation, one bias-free projection shared by both streams, the
    transformer projects further); 2 is LTX-2.3 (per-token RMS, one biased projection per stream).
    ``gemma_hidden_size`` / ``gemma_num_hidden_states`` are what the projection was trained on (hidden width,
    and layers + 1 for the embedding output); ``None`` when the file holds no projection.
    """

    version: int
    video_dim: int
    audio_dim: int
    video_connector: ConnectorConfig
    audio_connector: ConnectorConfig
    gemma_hidden_size: int | None
    gemma_num_hidden_states: int | None

    @classmethod
    def from_dict(
        cls,
        values: Mapping[str, Any],
        projection_shape: tuple[int, ...] | None = None,
        *,
        gemma_hidden_size: int | None = None,
        model_version: str | None = None,
    ) -> TextEncoderConfig:
        """``values``: the transformer section (the connectors' keys live there). ``projection_shape``: the stored
        shape of the (video) aggregate projection weight, [out, in]. ``gemma_hidden_size``: the text encoder's
        hidden width where the file says it (LTX-2.5: the Gemma 4 config packed with the projection); LTX-2.3
        files do not, and mean Gemma 3 12B."""
        transformer = TransformerConfig.from_dict(values, model_version)
        s = _Section("transformer", values)
        shared = {"rope_type": transformer.rope_type, "rope_float64": transformer.rope_float64}
        max_pos = s.ints("connector_positional_embedding_max_pos", (1,), length=1)
        gated = s.bool("connector_apply_gated_attention", False)
        shared["ff_bias"] = s.bool("connector_ff_bias", True)
        video = ConnectorConfig(
            num_attention_heads=s.int("connector_num_attention_heads", 30),
            attention_head_dim=s.int("connector_attention_head_dim", 128),
            num_layers=s.int("connector_num_layers", 2),
            positional_embedding_max_pos=max_pos,
            apply_gated_attention=gated,
            **shared,
        )
        audio = ConnectorConfig(
            num_attention_heads=s.int("audio_connector_num_attention_heads", video.num_attention_heads),
            attention_head_dim=s.int("audio_connector_attention_head_dim", video.attention_head_dim),
            num_layers=s.int("audio_connector_num_layers", video.num_layers),
            positional_embedding_max_pos=max_pos,
            apply_gated_attention=gated,
            **shared,
        )
        version = transformer.text_path_version
        if version == 1:
            hidden = transformer.caption_channels
            video_dim = audio_dim = hidden
        else:
            hidden = gemma_hidden_size or transformer.caption_channels or GEMMA3_12B_HIDDEN_SIZE
            video_dim, audio_dim = transformer.video_dim, transformer.audio_dim
        if video.dim != video_dim or audio.dim != audio_dim:
            raise ConfigError(
                f"text connectors are {video.dim} (video) / {audio.dim} (audio) wide but the text path of this "
                f"{transformer.variant} config produces {video_dim} / {audio_dim}; check "
                "'transformer.connector_num_attention_heads' and 'transformer.connector_attention_head_dim'"
            )
        num_states = None
        if projection_shape is not None:
            if len(projection_shape) != 2 or 0 in projection_shape:
                raise ConfigError(
                    f"the text projection weight has shape {list(projection_shape)}; a linear weight is "
                    "[out features, in features], both above 0"
                )
            if version == 1:
                hidden = projection_shape[0]
            in_features = projection_shape[1]
            if in_features % hidden:
                raise ConfigError(
                    f"the text projection takes {in_features} features, which is not a whole number of Gemma "
                    f"hidden states of width {hidden}"
                )
            num_states = in_features // hidden
        return cls(
            version=version,
            video_dim=video_dim,
            audio_dim=audio_dim,
            video_connector=video,
            audio_connector=audio,
            gemma_hidden_size=hidden if projection_shape is not None else None,
            gemma_num_hidden_states=num_states,
        )


# ---------------------------------------------------------------------------------------------------------------
# Video VAE


@dataclass(frozen=True)
class VideoVAEConfig:
    """The causal video VAE (``config["vae"]``). Block lists are ``(name, params)`` pairs; decoder blocks are
    listed from the pixel side, as in the file."""

    encoder_blocks: tuple[tuple[str, dict[str, Any]], ...]
    decoder_blocks: tuple[tuple[str, dict[str, Any]], ...]
    latent_channels: int
    in_channels: int
    out_channels: int
    patch_size: int
    norm_layer: str
    latent_log_var: str
    encoder_spatial_padding_mode: str
    decoder_spatial_padding_mode: str
    causal_decoder: bool
    timestep_conditioning: bool
    decoder_base_channels: int

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VideoVAEConfig:
        s = _Section("vae", values)
        if s.int("dims", 3) != 3:
            raise s._fail("dims", s.values.get("dims"), "3 (a video VAE)")
        modes = ("zeros", "reflect", "replicate", "circular")
        # One key feeds both halves; when it is absent the reference pads the encoder with zeros and the
        # decoder by reflection.
        return cls(
            encoder_blocks=_block_list(s, "encoder_blocks"),
            decoder_blocks=_block_list(s, "decoder_blocks"),
            latent_channels=s.int("latent_channels", 128),
            in_channels=s.int("in_channels", 3),
            out_channels=s.int("out_channels", 3),
            patch_size=s.int("patch_size", 4),
            norm_layer=s.choice("norm_layer", "pixel_norm", ("pixel_norm", "group_norm")),
            latent_log_var=s.choice("latent_log_var", "uniform", ("uniform", "per_channel", "constant", "none")),
            encoder_spatial_padding_mode=s.choice("spatial_padding_mode", "zeros", modes),
            decoder_spatial_padding_mode=s.choice("spatial_padding_mode", "reflect", modes),
            causal_decoder=s.bool("causal_decoder", False),
            timestep_conditioning=s.bool("timestep_conditioning", True),
            decoder_base_channels=s.int("decoder_base_channels", 128),
        )


def _block_list(s: _Section, key: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    raw = s.values.get(key)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(f"config key '{s.name}.{key}' is missing or empty; it lists the VAE's blocks")
    s._check_length(key, raw)
    blocks = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], str):
            raise ConfigError(f"config key '{s.name}.{key}[{i}]' is {_shown(entry)}; expected [block_name, params]")
        name, params = entry
        if isinstance(params, int) and not isinstance(params, bool):
            params = {"num_layers": params}
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"config key '{s.name}.{key}[{i}]' has params {_shown(params)}; expected an int or object"
            )
        block = _Section(f"{s.name}.{key}[{i}]", params)
        for count in ("num_layers", "multiplier"):
            if block.values.get(count) is not None:
                block.int(count)
        for switch in ("residual", "inject_noise"):
            if switch in params and params[switch] not in (True, False, None):
                raise block._fail(switch, params[switch], "true or false")
        blocks.append((name, dict(params)))
    return tuple(blocks)


# ---------------------------------------------------------------------------------------------------------------
# Audio VAE


@dataclass(frozen=True)
class AudioVAEConfig:
    """The stereo log-mel audio VAE (``config["audio_vae"]``, nested as ``model.params.ddconfig``)."""

    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]
    resolution: int
    z_channels: int
    double_z: bool
    in_channels: int
    out_ch: int
    mid_block_add_attention: bool
    norm_type: str
    causality_axis: str
    dropout: float
    mel_bins: int
    sampling_rate: int
    mel_hop_length: int
    n_fft: int
    causal: bool

    @property
    def latents_per_second(self) -> float:
        """Audio latent frames per second: mel frames per second over the time compression."""
        return self.sampling_rate / self.mel_hop_length / 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AudioVAEConfig:
        root = _Section("audio_vae", values)
        params = root.sub("model").sub("params")
        dd = params.sub("ddconfig")
        stft = root.sub("preprocessing").sub("stft")
        mel = root.sub("preprocessing").sub("mel")
        variables = root.sub("variables")
        for section, key in ((dd, "mel_bins"), (mel, "n_mel_channels"), (variables, "mel_bins")):
            if section.values.get(key):
                mel_bins = section.int(key)
                break
        else:
            raise ConfigError(
                "config section 'audio_vae' does not give the number of mel bins (looked in model.params.ddconfig"
                ".mel_bins, preprocessing.mel.n_mel_channels and variables.mel_bins)"
            )
        attn = dd.ints("attn_resolutions", (8, 16, 32)) if dd.values.get("attn_resolutions") is not None else ()
        cfg = cls(
            ch=dd.int("ch", 128),
            ch_mult=dd.ints("ch_mult", (1, 2, 4)),
            num_res_blocks=dd.int("num_res_blocks", 2),
            attn_resolutions=attn,
            resolution=dd.int("resolution", 256),
            z_channels=dd.int("z_channels", 8),
            double_z=dd.bool("double_z", True),
            in_channels=dd.int("in_channels", 2),
            out_ch=dd.int("out_ch", 2),
            mid_block_add_attention=dd.bool("mid_block_add_attention", True),
            norm_type=dd.choice("norm_type", "pixel", ("pixel", "group")),
            causality_axis=dd.choice("causality_axis", "height", ("none", "width", "height", "width-compatibility")),
            dropout=dd.float("dropout", 0.0),
            mel_bins=mel_bins,
            sampling_rate=params.int("sampling_rate", 16000),
            mel_hop_length=stft.int("hop_length", 160),
            n_fft=stft.int("filter_length", 1024),
            causal=stft.bool("causal", True),
        )
        if cfg.z_channels * cfg.mel_bins // 2 ** (len(cfg.ch_mult) - 1) != cfg.ch:
            raise ConfigError(
                f"audio VAE: the latent statistics have 'ch'={cfg.ch} entries but z_channels ({cfg.z_channels}) x "
                f"latent mel bins ({cfg.mel_bins} / {2 ** (len(cfg.ch_mult) - 1)}) gives a different count"
            )
        return cfg


# ---------------------------------------------------------------------------------------------------------------
# Vocoder


@dataclass(frozen=True)
class GeneratorConfig:
    """One mel -> waveform generator: HiFi-GAN ("resblock" "1") or BigVGAN-v2 ("AMP1" with snake-beta)."""

    upsample_initial_channel: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    resblock: str
    activation: str
    use_tanh_at_final: bool
    use_bias_at_final: bool
    output_sampling_rate: int

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    @classmethod
    def from_dict(cls, s: _Section, resblock: str, output_sampling_rate: int) -> GeneratorConfig:
        if s.values.get("stereo", True) is not True:
            raise s._fail("stereo", s.values.get("stereo"), "true (LTX-2 audio is stereo)")
        found = s.values.get("resblock", "1")
        if found != resblock:
            raise s._fail("resblock", found, repr(resblock))
        cfg = cls(
            upsample_initial_channel=s.int("upsample_initial_channel", 1024),
            upsample_rates=s.ints("upsample_rates", (6, 5, 2, 2, 2)),
            upsample_kernel_sizes=s.ints("upsample_kernel_sizes", (16, 15, 8, 4, 4)),
            resblock_kernel_sizes=s.ints("resblock_kernel_sizes", (3, 7, 11)),
            resblock_dilation_sizes=s.int_lists("resblock_dilation_sizes", ((1, 3, 5),) * 3),
            resblock=found,
            activation=s.choice("activation", "snake", ("snake", "snakebeta")),
            use_tanh_at_final=s.bool("use_tanh_at_final", True),
            use_bias_at_final=s.bool("use_bias_at_final", True),
            output_sampling_rate=output_sampling_rate,
        )
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ConfigError(f"config section '{s.name}': upsample_rates and upsample_kernel_sizes differ in length")
        if cfg.resblock == "AMP1" and cfg.activation != "snakebeta":
            raise s._fail("activation", cfg.activation, "'snakebeta' for the BigVGAN vocoder")
        return cfg


@dataclass(frozen=True)
class VocoderConfig:
    """``config["vocoder"]``: a HiFi-GAN at 24 kHz (LTX-2) or BigVGAN at 16 kHz plus bandwidth extension to
    48 kHz (LTX-2.3, nested ``{"vocoder": ..., "bwe": ...}``)."""

    generator: GeneratorConfig
    bwe: GeneratorConfig | None = None
    bwe_n_fft: int | None = None
    bwe_hop_length: int | None = None
    bwe_num_mels: int | None = None

    @property
    def sample_rate(self) -> int:
        return (self.bwe or self.generator).output_sampling_rate

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VocoderConfig:
        s = _Section("vocoder", values)
        if not s.has("bwe"):
            return cls(generator=GeneratorConfig.from_dict(s, "1", s.int("output_sampling_rate", 24000)))
        bwe = s.sub("bwe")
        generator = GeneratorConfig.from_dict(s.sub("vocoder"), "AMP1", bwe.int("input_sampling_rate"))
        return cls(
            generator=generator,
            bwe=GeneratorConfig.from_dict(bwe, "AMP1", bwe.int("output_sampling_rate")),
            bwe_n_fft=bwe.int("n_fft"),
            bwe_hop_length=bwe.int("hop_length"),
            bwe_num_mels=bwe.int("num_mels"),
        )


# ---------------------------------------------------------------------------------------------------------------
# Whole checkpoint


def parse_model_version(text: str | None) -> tuple[int, ...]:
    """``metadata["model_version"]`` as numbers: ``"2.5.0"`` -> (2, 5, 0). Reading stops at the first part that is
    not a whole number (``"2.3.rc1"`` -> (2, 3)); ``-`` separates like ``.`` (``"2.4-rc2"`` -> (2, 4)), as the
    official pipelines read it. Unset or unreadable: ()."""
    if not isinstance(text, str):
        return ()
    numbers: list[int] = []
    for part in text.strip().replace("-", ".").split("."):
        if not part.isdigit() or len(part) > 6:
            break
        numbers.append(int(part))
    return tuple(numbers)


# Releases by model_version. 2.4 is the pre-release numbering of LTX-2.5 (the official code treats every version
# from 2.4 on as the Gemma 4 generation).
_VERSION_VARIANTS = {(2, 0): LTX2, (2, 1): LTX2, (2, 2): LTX2, (2, 3): LTX23, (2, 4): LTX25, (2, 5): LTX25}
NEWEST_SUPPORTED_VERSION = (2, 5)


def variant_of_version(model_version: str | None) -> str | None:
    """The release a ``model_version`` string names (``None``: unset, unreadable or newer than LTX-2.5)."""
    numbers = parse_model_version(model_version)
    if numbers == (2,):
        return LTX2
    return _VERSION_VARIANTS.get(numbers[:2])


def is_newer_release(model_version: str | None) -> bool:
    """A ``model_version`` beyond the newest release LTX-AV implements (2.6, 3.0, ...)."""
    return parse_model_version(model_version)[:2] > NEWEST_SUPPORTED_VERSION


def transformer_variant(section: Mapping[str, Any], model_version: str | None = None) -> str:
    """The release a transformer section describes. Its own keys decide where they can: an LTX-2.5 key away from
    the LTX-2.3 value (``ff_bias: false``, ``use_keyframes_abs_pos_embedding: true``, ...); else the text-path
    layout, gating and prompt AdaLN that LTX-2.3 introduced. A section that looks like LTX-2.3 in a file whose
    ``model_version`` says 2.4 / 2.5 is an LTX-2.5 network with LTX-2.3 values."""
    if any(k in section and section[k] != v for k, v in _LTX25_TRANSFORMER_KEYS.items()):
        return LTX25
    v2 = section.get("caption_proj_before_connector") is True
    if not (v2 or section.get("apply_gated_attention") or section.get("cross_attention_adaln")):
        return LTX2
    return LTX25 if variant_of_version(model_version) == LTX25 else LTX23


def video_vae_class(section: Mapping[str, Any]) -> str:
    """``vae._class_name``: the convolutional VAE when absent (files before LTX-2.5 may not name it)."""
    name = section.get("_class_name", CONV_VAE_CLASS)
    return name if isinstance(name, str) else repr(name)


@dataclass(frozen=True)
class CheckpointConfig:
    """Every component config a checkpoint describes (``None`` for components it does not hold)."""

    variant: str | None
    model_version: str | None
    transformer: TransformerConfig | None = None
    text_encoder: TextEncoderConfig | None = None
    video_vae: VideoVAEConfig | None = None
    audio_vae: AudioVAEConfig | None = None
    vocoder: VocoderConfig | None = None

    @property
    def variant_name(self) -> str:
        return self.variant or "LTX-2 family"
