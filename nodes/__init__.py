"""ComfyUI nodes (classic V1 API). Each module lists its node classes in ``NODES``; the mappings come from those."""

from . import audio, duration, latent_files, long_video, lora, model, sampling, text, upsample, video
from .host import register_model_folders

NODE_CLASSES = (
    *model.NODES,
    *lora.NODES,
    *text.NODES,
    *duration.NODES,
    *video.NODES,
    *audio.NODES,
    *sampling.NODES,
    *upsample.NODES,
    *latent_files.NODES,
    *long_video.NODES,
)

NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in NODE_CLASSES}
NODE_DISPLAY_NAME_MAPPINGS = {cls.__name__: cls.DISPLAY_NAME for cls in NODE_CLASSES}

register_model_folders()
