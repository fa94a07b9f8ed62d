"""LTX-2.5 video VAE: the diffusion decoder (whole and tiled decode), the 2.5 encoder and the 2.5 convolutional
decoder against ltx-core 1.2.0 outputs stored as fixtures (tests/fixtures/ltx25/make_decoder_fixtures.py), our
neighbourhood attention against a dense definition, and refusals of bad inputs and bad files."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ltx_av.ltx_core import diffusion_tiling
from ltx_av.ltx_core.diffusion_decoder import DiffusionDecoderConfig
from ltx_av.ltx_core.errors import CheckpointError, ConfigError, InputError
from ltx_av.ltx_core.neighborhood_attention import attend, neighborhood_attention, window_start
from ltx_av.ltx_core.tiling import DecodeTiling, choose_decode_tiling, decode, iter_decode
from ltx_av.ltx_core.video_vae import VideoVAE
from ltx_av.ltx_core.video_vae_file import load_video_vae_file, video_vae_configs

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ltx25")
TOL = 1e-4  # of the largest reference value
X0, V, CONV = (os.path.join(FIXTURES, f"decoder_vae_{n}.safetensors") for n in ("diffusion_x0", "diffusion_v", "conv"))


def _case(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(os.path.join(FIXTURES, f"decoder_case_{name}.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return ((ours.float() - ref).abs().max() / ref.abs().max()).item()


def _tiling(meta: dict[str, str]) -> DecodeTiling | None:
    t = json.loads(meta["tiling"])
    if t is None:
        return None
    spatial = t["height"] or None  # the fixtures' tiles are square, which our long-side rule reproduces
    return DecodeTiling(
        spatial_tile=max(t["height"], t["width"]) if spatial else None,
        spatial_overlap=t["spatial_overlap"] if spatial else 64,
        temporal_tile=t["frames"],
        temporal_overlap=t["frames_overlap"],
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny decodes are thousands of small operations; on shared cores a second thread mostly waits for the
    first (a tiled decode took 37 s with two threads against 4.6 s with one under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vaes() -> dict[str, VideoVAE]:
    return {
        name: load_video_vae_file(path, dtype=torch.float32) for name, path in (("x0", X0), ("v", V), ("conv", CONV))
    }


def _file_keys(path: str) -> set[str]:
    with safe_open(path, "pt") as f:
        return set(f.keys())


# -- files and keys -------------------------------------------------------------------------------------------------


def test_module_keys_are_the_files_keys(vaes):
    for name, path in (("x0", X0), ("v", V), ("conv", CONV)):
        keys = {k for k in _file_keys(path) if not k.startswith("decoder.coarse_")}
        assert set(vaes[name].state_dict()) == keys
    x0 = vaes["x0"].state_dict()
    assert x0["decoder.det_stages.0.0.attn.qkv.weight"].shape == (3 * 64, 64)  # fused q, k, v as stored
    assert "decoder.t_embedder.mlp.2.weight" in x0 and "decoder.diff_blocks.1.gate_ctx" in x0
    assert "decoder.diff_blocks.0.gate_msa" not in vaes["v"].state_dict()  # gates only where the file has them


def test_configs_come_from_the_metadata(vaes):
    x0, v = vaes["x0"], vaes["v"]
    assert x0.is_diffusion and v.is_diffusion and not vaes["conv"].is_diffusion
    c = x0.diffusion_config
    assert (c.prediction, c.steps, c.timestep_scale, c.static_gates) == ("x0", 1, 1000.0, True)
    assert c.stage_kernels[0] == (3, 5, 5) and c.min_latent == (3, 5, 5)
    assert c.min_overlaps == (8, 32)  # stage 5: 2 blocks x 5//2 cells -> 2 stage-4 cells -> 4 frames / 16 px
    assert (v.diffusion_config.prediction, v.diffusion_config.steps, v.diffusion_config.stage5_channels) == ("v", 2, 48)
    # The 2.5 encoder, nested under vae.encoder, read into the 2.3 classes.
    assert x0.config.latent_log_var == "constant" and x0.config.encoder_blocks[-1][1] == {"multiplier": 1}


def test_decoder_only_loads_without_encoder():
    vae = load_video_vae_file(X0, parts=("decoder",))
    assert vae.encoder is None and not any(k.startswith("encoder.") for k in vae.state_dict())


# -- parity with ltx-core 1.2.0 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, vae", [("encode_diffusion", "x0"), ("encode_conv", "conv")])
def test_encode_matches_reference(vaes, name, vae):
    tensors, _ = _case(name)
    with torch.inference_mode():
        assert _rel_err(vaes[vae].encode(tensors["video"]), tensors["latent"]) <= TOL


@pytest.mark.parametrize("name, vae", [("x0_whole", "x0"), ("v_whole", "v"), ("conv", "conv")])
def test_whole_decode_matches_reference(vaes, name, vae):
    """The released recipe (one x0 step, a latent smaller than the stage windows: padded, then cropped), two Euler
    steps on a velocity, and the convolutional decoder with its noise and timestep."""
    tensors, meta = _case(name)
    generator = torch.Generator().manual_seed(int(meta["seed"]))
    with torch.inference_mode():
        pixels = vaes[vae].decode(tensors["latent"], noise=generator)
    assert _rel_err(pixels, tensors["pixels"]) <= TOL


def test_full_volume_pathway_matches_reference(vaes):
    """width_border="shift": NATTEN's windows at the width's borders too (ltx-core's COMBINED modes, ComfyUI)."""
    tensors, meta = _case("v_whole_combined")
    vae = vaes["v"]
    generator = torch.Generator().manual_seed(int(meta["seed"]))
    with torch.inference_mode():
        pixels = diffusion_tiling.decode(
            vae.decoder, vae.diffusion_input(tensors["latent"]), None, generator=generator, width_border="shift"
        )
    assert _rel_err(pixels, tensors["pixels"]) <= TOL
    chunked, _ = _case("v_whole")
    assert _rel_err(chunked["pixels"], tensors["pixels"]) > 0.01  # the two pathways differ at the borders


@pytest.mark.parametrize("name, vae", [("x0_tiled", "x0"), ("v_tiled", "v")])
def test_tiled_decode_matches_reference(vaes, name, vae):
    """Tiles in time, height and width (x0: fresh noise per tile) and in time only (v: one noise video, sliced),
    streamed in order with progress after every tile."""
    tensors, meta = _case(name)
    tiling = _tiling(meta)
    plan = diffusion_tiling.plan_decode(vaes[vae].diffusion_config, tensors["latent"].shape, tiling)
    tiles = [len(axis.output) for axis in (plan.time, plan.rows, plan.cols)]
    assert tiles == ([2, 4, 4] if vae == "x0" else [2, 1, 1])  # x0: the padded 5x5 latent in 64 px tiles
    generator = torch.Generator().manual_seed(int(meta["seed"]))
    calls, runs = [], []
    with torch.inference_mode():
        for start, frames in iter_decode(
            vaes[vae], tensors["latent"], tiling, noise=generator, progress=lambda d, t: calls.append((d, t))
        ):
            runs.append((start, frames))
    assert [s for s, _ in runs] == sorted(s for s, _ in runs) and len(runs) > 1
    assert calls == [(i + 1, plan.tile_count) for i in range(plan.tile_count)]
    pixels = torch.cat([f for _, f in runs], dim=2)
    assert _rel_err(pixels, tensors["pixels"]) <= TOL


def test_oom_retry_rewinds_the_generator(vaes):
    """A retry after running out of memory starts over with smaller tiles and the same noise."""
    tensors, meta = _case("x0_tiled")
    vae, seed = vaes["x0"], int(meta["seed"])
    first = DecodeTiling(spatial_tile=None, temporal_tile=16, temporal_overlap=8)

    class FakeOOM(RuntimeError):
        pass

    def fail_once(done: int, total: int) -> None:
        if not failed:
            failed.append(done)
            raise FakeOOM

    failed: list[int] = []
    retried = []
    with torch.inference_mode():
        retry = decode(
            vae,
            tensors["latent"],
            first,
            noise=torch.Generator().manual_seed(seed),
            progress=fail_once,
            is_oom=lambda e: isinstance(e, FakeOOM),
            on_retry=retried.append,
        )
        assert len(retried) == 1
        direct = decode(vae, tensors["latent"], retried[0], noise=torch.Generator().manual_seed(seed))
    assert torch.equal(retry, direct)


# -- neighbourhood attention ----------------------------------------------------------------------------------------


def _dense_reference(q, k, v, kernel):
    """Every query against exactly its window (NATTEN's rule), one query at a time."""
    _, t, h, w, heads, d = q.shape
    out = torch.empty_like(q)
    for i in range(t):
        for j in range(h):
            for m in range(w):
                a, b, c = (window_start(p, n, kk) for p, n, kk in zip((i, j, m), (t, h, w), kernel, strict=True))
                keys = k[:, a : a + kernel[0], b : b + kernel[1], c : c + kernel[2]].reshape(q.shape[0], -1, heads, d)
                vals = v[:, a : a + kernel[0], b : b + kernel[1], c : c + kernel[2]].reshape(q.shape[0], -1, heads, d)
                scores = torch.einsum("bhd,bnhd->bhn", q[:, i, j, m], keys).softmax(-1)
                out[:, i, j, m] = torch.einsum("bhn,bnhd->bhd", scores, vals)
    return out


@pytest.mark.parametrize("shape, kernel", [((4, 7, 9), (3, 5, 5)), ((5, 6, 5), (5, 3, 2)), ((3, 3, 8), (3, 3, 3))])
def test_neighborhood_attention_is_windowed_softmax(shape, kernel):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, *shape, 2, 8, generator=g) for _ in range(3))
    ref = _dense_reference(q, k, v, kernel)
    assert (neighborhood_attention(q, k, v, kernel) - ref).abs().max() < 1e-5
    # A slab of rows and an inner range of columns, with the keys their windows need, give the same rows.
    hm = lambda x: x.permute(0, 4, 1, 2, 3, 5).contiguous()  # noqa: E731
    h0, h1, w0, w1 = 1, shape[1] - 1, 1, shape[2] - 1
    r0, r1 = window_start(h0, shape[1], kernel[1]), window_start(h1 - 1, shape[1], kernel[1]) + kernel[1]
    slab = attend(
        hm(q[:, :, h0:h1, w0:w1]), hm(k[:, :, r0:r1]), hm(v[:, :, r0:r1]), kernel, shape, (0, h0, w0), (0, r0, 0)
    )
    assert (slab.permute(0, 2, 3, 4, 1, 5) - ref[:, :, h0:h1, w0:w1]).abs().max() < 1e-5


def test_neighborhood_attention_refuses_a_volume_smaller_than_its_window():
    q = torch.zeros(1, 2, 5, 5, 1, 8)
    with pytest.raises(ValueError, match="smaller than"):
        neighborhood_attention(q, q, q, (3, 3, 3))


# -- tiling choices ---------------------------------------------------------------------------------------------


def test_tilings_respect_the_attention_reach(vaes):
    config = vaes["x0"].diffusion_config
    shape = (1, 16, 9, 12, 20)
    assert choose_decode_tiling(config, shape, 2**40) is None
    tight = choose_decode_tiling(config, shape, 1)
    assert tight is not None and tight.temporal_overlap >= 8 and tight.spatial_overlap >= 32
    loose = diffusion_tiling.estimate_decode_bytes(config, shape, None)
    assert diffusion_tiling.estimate_decode_bytes(config, shape, tight) < loose
    with pytest.raises(InputError, match="at least 32"):
        diffusion_tiling.plan_decode(config, shape, DecodeTiling(spatial_tile=128, spatial_overlap=0))
    with pytest.raises(InputError, match="temporal_overlap is 0 frames.*at least 8"):
        diffusion_tiling.plan_decode(
            config, shape, DecodeTiling(spatial_tile=None, temporal_tile=16, temporal_overlap=0)
        )


# -- bad inputs -----------------------------------------------------------------------------------------------------


def test_bad_decode_inputs_are_refused(vaes):
    vae = vaes["x0"]
    latent = torch.zeros(1, 16, 2, 2, 2)
    with pytest.raises(InputError, match=r"latent must be \[batch, 16"):
        vae.decode(torch.zeros(1, 8, 2, 2, 2))
    with pytest.raises(InputError, match="no decode timestep"):
        vae.decode(latent, timestep=0.05)
    with pytest.raises(InputError, match="torch.Generator"):
        decode(vae, latent, None, noise=torch.zeros_like(latent))
    with pytest.raises(InputError, match="width_border"):
        diffusion_tiling.decode(vae.decoder, latent, None, width_border="wrap")


# -- bad files ------------------------------------------------------------------------------------------------------


def _rewrite(tmp_path, source: str, change_config=None, change_tensors=None) -> str:
    with safe_open(source, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata())
    if change_config is not None:
        config = json.loads(metadata["config"])
        change_config(config["vae"])
        metadata["config"] = json.dumps(config)
    if change_tensors is not None:
        change_tensors(tensors)
    path = str(tmp_path / "changed.safetensors")
    save_file(tensors, path, metadata=metadata)
    return path


def _drop(key: str):
    return lambda d: d.pop(key)


@pytest.mark.parametrize(
    "change_config, change_tensors, message",
    [
        (lambda v: v["decoder"].pop("stage_kernels"), None, "'vae.decoder.stage_kernels' is missing"),
        (lambda v: v.update(_class_name="CausalMagicVAE"), None, "'vae._class_name' is 'CausalMagicVAE'"),
        (lambda v: v.update(model_output_type="eps"), None, "'vae.model_output_type' is 'eps'"),
        (lambda v: v["decoder"].update(stage_channels=[64, 32, 32, 32, 48]), None, "stage 4 has 48"),
        (lambda v: v["decoder"]["upsamples"][1].__setitem__(0, [1, 1, 1]), None, "scale a latent cell by 4x32x32"),
        (lambda v: v["decoder"].update(stage_depths=[1, 1, 1, 1, 3]), None, r"stage_depths\[4\]' says 3"),
        (None, _drop("decoder.norm_out.weight"), "1 missing.*decoder.norm_out.weight"),
        (None, _drop("decoder.diff_blocks.1.gate_mlp"), "missing.*decoder.diff_blocks.1.gate_mlp"),
        (None, lambda t: t.update({"decoder.extra.weight": torch.zeros(1)}), "unexpected: decoder.extra.weight"),
        (
            None,
            lambda t: t.update({"decoder.conv_in.bias": torch.zeros(7)}),
            r"decoder.conv_in.bias expected \[64\] found \[7\]",
        ),
    ],
)
def test_bad_files_are_refused(tmp_path, change_config, change_tensors, message):
    path = _rewrite(tmp_path, X0, change_config, change_tensors)
    with pytest.raises(CheckpointError, match=message) as error:
        load_video_vae_file(path)
    assert "changed.safetensors" in str(error.value)


def test_files_without_a_vae_config_are_refused(tmp_path):
    path = str(tmp_path / "bare.safetensors")
    save_file({"decoder.conv_in.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="lacks the 'config' entry"):
        load_video_vae_file(path)
    save_file({"decoder.conv_in.weight": torch.zeros(2, 2)}, path, metadata={"config": json.dumps({"x": 1})})
    with pytest.raises(CheckpointError, match="no 'vae' section"):
        load_video_vae_file(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_video_vae_file(str(tmp_path / "missing.safetensors"))
    other = str(tmp_path / "other.safetensors")
    shutil.copy(X0, other)
    assert load_video_vae_file(other).is_diffusion  # any name works; the config decides


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="'vae.decoder.head_dim' is missing"):
        DiffusionDecoderConfig.from_vae_config(_sizes_without("head_dim"))
    with pytest.raises(ConfigError, match="'vae.encoder.norm_layer'"):
        video_vae_configs({"norm_layer": "group_norm", "encoder": {"norm_layer": "pixel_norm"}})


def _sizes_without(key: str) -> dict:
    decoder = {
        "stage_channels": [64, 32, 32, 32, 32],
        "stage_depths": [1, 1, 1, 1, 1],
        "stage_kernels": [[3, 3, 3]] * 5,
        "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 1], [[2, 2, 2], 1], [[2, 2, 2], 1]],
        "stage5_kernel": [3, 3, 3],
        "head_dim": 16,
    }
    decoder.pop(key)
    return {"decoder": decoder}


def test_samples_of_a_batch_are_decoded_independently(vaes):
    """Each sample gets its own timestep modulation, attention and feed-forward (the reference's default pathway
    refuses batches, so this is checked against one-sample decodes)."""
    vae = vaes["v"]
    decoder, config = vae.decoder, vae.diffusion_config
    g = torch.Generator().manual_seed(3)
    latent = torch.randn(2, 16, 3, 3, 3, generator=g)
    plan = diffusion_tiling.plan_decode(config, latent.shape, None)
    padded = diffusion_tiling.pad_latent(latent, plan)
    padded = torch.cat([padded, padded[:, :, -1:].expand(-1, -1, config.trailing_latent_frames, -1, -1)], dim=2)
    noise = torch.randn(2, 3, *plan.padded_pixels, generator=g)
    with torch.inference_mode():
        both = decoder.decode_tile(decoder.stage_features(padded), noise, origin=True, trailing=True)
        alone = [
            decoder.decode_tile(decoder.stage_features(padded[i : i + 1]), noise[i : i + 1], origin=True, trailing=True)
            for i in range(2)
        ]
    assert (both - torch.cat(alone)).abs().max() < 1e-5 * both.abs().max()
