"""The pack's weights and ComfyUI's model management, against a stand-in of ``comfy.model_management`` (and of
``comfy.model_patcher.ModelPatcher``) that keeps ComfyUI's rules: ``load_models_gpu`` frees the model's bytes x 1.1
plus an inference reserve on a non-CPU device, unloading loaded models from the newest down, before it calls
``partially_load``; ``free_memory`` unloads through ``partially_unload`` / ``detach``; re-loading a registered model
detaches it with ``unpatch_all=False`` first; the list holds weak references.

The compute device is ``cpu:0``: not ``torch.device("cpu")`` (so room is made for it, as for a GPU) while tensors
stay in CPU memory."""

from __future__ import annotations

import logging
import sys
import types
import weakref

import pytest
import tiny_gemma
import tiny_upsamplers
import torch

from ltx_av.ltx_core.offload import BLOCKS_PREFIX, Placement
from ltx_av.nodes import host
from ltx_av.nodes.audio import load_audio
from ltx_av.nodes.model import LoadedTransformer, load_transformer, placed_bytes
from ltx_av.nodes.text import LTXTextEncoderHolder
from ltx_av.nodes.upsample import load_latent_upsampler
from ltx_av.nodes.video import load_video

DEVICE = torch.device("cpu", 0)
CPU = torch.device("cpu")
RESERVE = 1000  # the stand-in's extra_reserved_memory()
MIN_INFERENCE = 5000  # its minimum_inference_memory()
TOTAL = 2**30  # memory of the stand-in device


def _bytes(*modules: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


class StandInPatcher:
    """``comfy.model_patcher.ModelPatcher``: what the model manager calls. Its own instances stand for a core model
    of ``size`` bytes (``model.loaded`` says how many are on the device)."""

    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        self.parent = None
        self.model_size()  # 0.3.64's constructor does this

    def model_size(self):
        return self.size

    def loaded_size(self):
        return self.model.loaded

    def current_loaded_device(self):
        return self.load_device if self.model.loaded else self.offload_device

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
        self.model.loaded = self.size
        return self.size

    def partially_unload(self, device_to, memory_to_free=0):
        return 0

    def detach(self, unpatch_all=True):
        if unpatch_all:
            self.model.loaded = 0
        return self.model

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def model_patches_to(self, device):
        pass

    def model_patches_models(self):
        return []

    def model_dtype(self):
        return None


class StandInLoaded:
    """``comfy.model_management.LoadedModel``."""

    def __init__(self, patcher):
        self._model = weakref.ref(patcher)
        self.device = patcher.load_device

    @property
    def model(self):
        return self._model()

    def model_unload(self, memory_to_free=None, unpatch_weights=True):
        if memory_to_free is not None and memory_to_free < self.model.loaded_size():
            if self.model.partially_unload(self.model.offload_device, memory_to_free) >= memory_to_free:
                return False
        self.model.detach(unpatch_weights)
        return True

    def __eq__(self, other):
        return self.model is other.model


class StandInModelManagement(types.ModuleType):
    """``comfy.model_management`` with ComfyUI's loading and unloading rules; ``calls`` records what the pack asked
    for, and ``observe()`` (set by a test) what was placed when room was requested."""

    def __init__(self, device=DEVICE):
        super().__init__("comfy.model_management")
        self.device = device
        self.current_loaded_models: list[StandInLoaded] = []
        self.calls: list[tuple] = []
        self.observe = lambda: None

    def get_torch_device(self):
        return self.device

    def unet_offload_device(self):
        return CPU

    def intermediate_device(self):
        return CPU

    def soft_empty_cache(self, force=False):
        self.calls.append(("soft_empty_cache",))

    def throw_exception_if_processing_interrupted(self):
        pass

    def extra_reserved_memory(self):
        return RESERVE

    def minimum_inference_memory(self):
        return MIN_INFERENCE

    def get_free_memory(self, dev=None, torch_free_too=False):
        return TOTAL - sum(m.model.loaded_size() for m in self.current_loaded_models if m.model is not None)

    def loaded_models(self, only_currently_used=False):
        return [m.model for m in self.current_loaded_models]

    def free_memory(self, memory_required, device, keep_loaded=[]):  # noqa: B006 (ComfyUI's signature)
        self.calls.append(("free_memory", memory_required, device, self.observe()))
        unloaded = []
        for i in range(len(self.current_loaded_models) - 1, -1, -1):
            free = self.get_free_memory(device)
            if free > memory_required:
                break
            loaded = self.current_loaded_models[i]
            if loaded.device == device and loaded not in keep_loaded and loaded.model_unload(memory_required - free):
                unloaded.append(self.current_loaded_models.pop(i))
        return unloaded

    def load_models_gpu(
        self, models, memory_required=0, force_patch_weights=False, minimum_memory_required=None, force_full_load=False
    ):
        self.calls.append(
            ("load_models_gpu", [type(m.model).__name__ for m in models], memory_required, force_full_load)
        )
        extra = max(self.minimum_inference_memory(), memory_required + self.extra_reserved_memory())
        to_load = []
        for patcher in models:
            loaded = StandInLoaded(patcher)
            if loaded in self.current_loaded_models:  # core takes a registered model out and detaches it first
                loaded = self.current_loaded_models.pop(self.current_loaded_models.index(loaded))
                loaded.model.detach(unpatch_all=False)
            to_load.append(loaded)
        for loaded in to_load:
            if loaded.device != torch.device("cpu"):
                model = loaded.model
                needed = model.model_size() - (
                    model.loaded_size() if model.current_loaded_device() == loaded.device else 0
                )
                self.free_memory(needed * 1.1 + extra, loaded.device)
        for loaded in to_load:
            loaded.model.partially_load(loaded.device, 1e32)
            self.current_loaded_models.insert(0, loaded)

    def unload_all_models(self):
        self.free_memory(1e30, self.device)


@pytest.fixture
def comfy(monkeypatch):
    """The stand-in ComfyUI, with a core model filling the device (so making room for ours must unload it)."""
    mm = StandInModelManagement()
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    monkeypatch.setitem(sys.modules, "comfy.model_patcher", types.SimpleNamespace(ModelPatcher=StandInPatcher))
    mm.core = StandInPatcher(types.SimpleNamespace(loaded=0), DEVICE, CPU, size=TOTAL - 100)
    mm.load_models_gpu([mm.core])
    mm.calls.clear()
    return mm


def _entry(mm, weights):
    """The stand-in's loaded-model entry for our weights (None when not registered)."""
    return next((m for m in mm.current_loaded_models if getattr(m.model, "_weights", lambda: None)() is weights), None)


def _frees(mm):
    return [c for c in mm.calls if c[0] == "free_memory"]


@pytest.fixture(scope="module")
def transformer_file(tiny_checkpoints):
    return tiny_checkpoints["LTX-2.3"]


# -- free before load, with the right byte count --------------------------------------------------------------------


def test_transformer_room_is_made_before_its_weights_move_and_core_gives_way(comfy, transformer_file):
    holder = load_transformer(transformer_file)
    assert holder.device == DEVICE and holder.model.placement.device == CPU
    expected = sum(p.numel() * 4 for p in holder.model.parameters())  # float32, every weight resident
    weights = holder.weights
    comfy.observe = weights.is_placed
    with holder.in_use():
        assert holder.model.placement.device == DEVICE and holder._on_device
        assert comfy.calls[0] == ("load_models_gpu", ["LTXAVTransformer"], 0, True)
        # room for our bytes (x 1.1 + reserve, ComfyUI's rule) on our device, asked while ours were still parked
        assert _frees(comfy) == [("free_memory", pytest.approx(expected * 1.1 + MIN_INFERENCE), DEVICE, False)]
        assert comfy.core.model.loaded == 0 and _entry(comfy, comfy.core) is None  # the core model was unloaded
        entry = _entry(comfy, weights)
        assert entry.model.model_size() == expected and entry.model.loaded_size() == expected
        assert entry.model.current_loaded_device() == DEVICE
        # a forward inside the use does not ask again
        calls = len(comfy.calls)
        holder.to_compute_device()
        assert len(comfy.calls) == calls
    # parked at the end of the node's use; the entry stays, holding and asking for nothing
    assert holder.model.placement.device == CPU and not weights.is_placed()
    assert entry.model.loaded_size() == 0 and entry.model.current_loaded_device() == CPU
    assert entry.model.model_size() == 0
    comfy.calls.clear()
    comfy.load_models_gpu([entry.model])  # a host path re-loading every registered model: no room, no placement
    assert _frees(comfy) == [("free_memory", pytest.approx(MIN_INFERENCE), DEVICE, False)]
    assert not weights.is_placed()


def test_block_streaming_and_float8_count_what_stays_on_the_device(transformer_file):
    holder = load_transformer(transformer_file)
    model = holder.model
    outside = sum(p.numel() * 2 for n, p in model.named_parameters() if not n.startswith(BLOCKS_PREFIX))
    blocks = [
        sum(p.numel() * 2 for n, p in model.named_parameters() if n.startswith(f"{BLOCKS_PREFIX}{i}."))
        for i in range(len(model.transformer_blocks))
    ]
    bf16 = torch.bfloat16
    assert placed_bytes(model, Placement(DEVICE, bf16, False, False)) == outside + sum(blocks)
    assert placed_bytes(model, Placement(DEVICE, bf16, True, False)) == outside + 2 * max(blocks)  # two in flight
    matrices = sum(
        p.numel()
        for n, p in model.named_parameters()
        if n.startswith(BLOCKS_PREFIX) and p.ndim == 2 and n.endswith(".weight")
    )
    float8 = placed_bytes(model, Placement(DEVICE, bf16, False, True))
    assert float8 == outside + sum(blocks) - matrices + 2 * max(blocks)  # 1 byte per matrix value, not 2


def test_vae_audio_upsampler_and_text_encoder_ask_for_their_bytes(comfy, tiny_checkpoints, tmp_path):
    path = tiny_checkpoints["LTX-2.3"]

    def placed_once(weights, expected, run):
        comfy.calls.clear()
        comfy.load_models_gpu([comfy.core])  # a core model fills the device again
        comfy.calls.clear()
        comfy.observe = weights.is_placed
        run()
        load = [c for c in comfy.calls if c[0] == "load_models_gpu"]
        assert load == [("load_models_gpu", [weights.name], 0, True)]
        assert _frees(comfy)[0] == ("free_memory", pytest.approx(expected * 1.1 + MIN_INFERENCE), DEVICE, False)
        assert comfy.core.model.loaded == 0
        assert weights.device_bytes() == expected and _entry(comfy, weights) is not None  # registered

    vae = load_video(path, dtype="fp32")
    placed_once(vae.weights, _bytes(vae.vae), lambda: vae.decode_latent(torch.zeros(1, 128, 2, 2, 2), tiling=None))
    assert not vae.weights.is_placed()

    audio = load_audio(path, dtype="fp32")
    latent = torch.zeros(1, audio.latent_channels, 4, audio.latent_mel_bins)
    placed_once(audio.weights, _bytes(audio.vae, audio.vocoder), lambda: audio.decode(latent))
    assert not audio.weights.is_placed()

    file = str(tmp_path / "up.safetensors")
    tiny_upsamplers.write_upsampler(file, "spatial-x2")
    upsampler = load_latent_upsampler(file, dtype="fp32")
    statistics = vae.vae.per_channel_statistics
    placed_once(
        upsampler.weights, _bytes(upsampler.model), lambda: upsampler.upsample(torch.zeros(1, 128, 2, 2, 2), statistics)
    )
    assert not upsampler.weights.is_placed()

    gemma = tiny_gemma.write_gemma_folder(str(tmp_path / "gemma"))
    encoder = LTXTextEncoderHolder(gemma, path, dtype=torch.float32)
    comfy.load_models_gpu([comfy.core])  # the encoder reads its weights at the first encode, so no placed_once
    comfy.calls.clear()
    encoder.encode("a cat", after="keep loaded")
    expected = _bytes(encoder.gemma.model, encoder.text_path)
    assert _frees(comfy)[0][1] == pytest.approx(expected * 1.1 + MIN_INFERENCE)
    assert encoder.weights.is_placed() and _entry(comfy, encoder.weights).model.loaded_size() == expected
    # kept loaded: ComfyUI unloads it when it needs the room
    comfy.load_models_gpu([comfy.core])
    assert not encoder.weights.is_placed() and comfy.core.model.loaded


def test_kept_weights_used_again_are_not_moved_or_counted_twice(comfy, tiny_checkpoints, tmp_path):
    gemma = tiny_gemma.write_gemma_folder(str(tmp_path / "gemma"))
    encoder = LTXTextEncoderHolder(gemma, tiny_checkpoints["LTX-2"], dtype=torch.float32)
    encoder.encode("first", after="keep loaded")
    moves = []
    original = host.ModuleWeights._place
    encoder.weights._place = lambda: moves.append(1) or original(encoder.weights)
    comfy.observe = encoder.weights.is_placed
    comfy.calls.clear()
    encoder.encode("second", after="keep loaded")
    # registered again (core detaches with unpatch_all=False first: that must not park them), nothing moved, and
    # only the inference reserve was asked for
    assert moves == [] and encoder.weights.is_placed()
    assert _frees(comfy) == [("free_memory", pytest.approx(MIN_INFERENCE), DEVICE, True)]
    assert len([m for m in comfy.current_loaded_models if _entry(comfy, encoder.weights) is m]) == 1


# -- released when the host asks ------------------------------------------------------------------------------------


def test_comfyui_unloads_ours_when_it_needs_room_unless_a_node_computes_with_them(comfy, transformer_file, caplog):
    caplog.set_level(logging.INFO, logger="ltx_av.host")
    holder = load_transformer(transformer_file)
    holder.to_compute_device()  # placed by a forward outside a node's use (nothing holds it)
    assert holder._on_device and comfy.core.model.loaded == 0
    comfy.load_models_gpu([comfy.core])  # a core node loads its model: ours make way
    assert not holder._on_device and holder.model.placement.device == CPU
    assert comfy.core.model.loaded and _entry(comfy, holder.weights) is None
    assert "ComfyUI unloaded LTXAVTransformer" in caplog.text

    caplog.clear()
    with holder.in_use():
        comfy.load_models_gpu([comfy.core])  # e.g. a callback of ours loads something while the sampler runs
        assert holder._on_device  # not pulled from under the running loop
        assert "while a node computes with it" in caplog.text
    assert not holder._on_device

    holder.to_compute_device()
    comfy.unload_all_models()  # "Unload models" in the UI, POST /free
    assert not holder._on_device and comfy.current_loaded_models == []


def test_memory_held_by_comfyui_models_counts_before_ours_are_placed(comfy, transformer_file):
    assert comfy.get_free_memory(DEVICE) == 100
    assert host.available_memory(DEVICE) == TOTAL  # the core model would be unloaded for us
    holder = load_transformer(transformer_file)
    with holder.in_use():
        # a budget planned while ours compute counts only what is free now
        assert host.available_memory(DEVICE) == comfy.get_free_memory(DEVICE)
    assert host.available_memory(CPU) == comfy.get_free_memory(CPU)  # unloading frees no CPU memory


def test_failed_placement_is_parked_again(comfy):
    class Failing(torch.nn.Linear):
        def to(self, device):
            if torch.device(device) == DEVICE:
                self.weight.data = self.weight.data.clone()
                raise torch.OutOfMemoryError("stand-in out of memory")
            return super().to(device)

    moved = []
    weights = host.ModuleWeights("LTXAVTest", [Failing(4, 4)], DEVICE, CPU)
    original = weights._park
    weights._park = lambda: moved.append("park") or original()
    with pytest.raises(torch.OutOfMemoryError), weights.in_use():
        pass
    assert "park" in moved and not weights.is_placed()


# -- hosts without the registration, and no host -----------------------------------------------------------------------


def test_without_model_patcher_room_is_asked_with_free_memory(monkeypatch, transformer_file, tiny_checkpoints):
    mm = StandInModelManagement()
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    monkeypatch.delitem(sys.modules, "comfy.model_patcher", raising=False)
    holder = load_transformer(transformer_file)
    expected = sum(p.numel() * 4 for p in holder.model.parameters())
    mm.observe = holder.weights.is_placed
    with holder.in_use():
        assert holder._on_device
    assert mm.calls[0] == ("free_memory", expected + RESERVE, DEVICE, False)
    assert not [c for c in mm.calls if c[0] == "load_models_gpu"]
    vae = load_video(tiny_checkpoints["LTX-2"], dtype="fp32")
    mm.calls.clear()
    mm.observe = vae.weights.is_placed
    vae.decode_latent(torch.zeros(1, 128, 2, 2, 2), tiling=None)
    assert mm.calls[0] == ("free_memory", _bytes(vae.vae) + RESERVE, DEVICE, False)


def test_a_cpu_device_asks_for_no_room(monkeypatch, transformer_file):
    mm = StandInModelManagement(device=CPU)
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    monkeypatch.setitem(sys.modules, "comfy.model_patcher", types.SimpleNamespace(ModelPatcher=StandInPatcher))
    holder = load_transformer(transformer_file)
    with holder.in_use():
        pass
    asked = [c[0] for c in mm.calls if c[0] != "soft_empty_cache"]
    assert asked == ["load_models_gpu"]  # registered (ComfyUI can unload it), but no room asked for
    host.make_room(CPU, 10**9)
    assert [c[0] for c in mm.calls if c[0] != "soft_empty_cache"] == asked


def test_outside_comfyui_weights_move_as_before_and_nothing_else_happens(tiny_checkpoints):
    assert "comfy.model_management" not in sys.modules
    before = {name for name in sys.modules if name.split(".")[0] == "comfy"}
    holder = load_transformer(tiny_checkpoints["LTX-2.3"], device=DEVICE)
    assert isinstance(holder, LoadedTransformer)
    with holder.in_use():
        assert holder.model.placement.device == DEVICE
    assert holder.model.placement.device == CPU
    vae = load_video(tiny_checkpoints["LTX-2.3"], dtype="fp32", device=DEVICE)
    vae.decode_latent(torch.zeros(1, 128, 2, 2, 2), tiling=None)
    host.make_room(DEVICE, 10**9)
    assert holder.weights._patcher is None and vae.weights._patcher is None  # never registered
    assert {name for name in sys.modules if name.split(".")[0] == "comfy"} == before
    assert host.available_memory(CPU) > 0
