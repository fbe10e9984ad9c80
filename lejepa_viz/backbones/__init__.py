"""Backbones from anywhere: ``load_backbone(source)`` returns a timm model with its preprocessing,
``load_encoder(source)`` the :class:`~lejepa_viz.model.Encoder` around it.

``source`` is one of

- a ``lejepa-viz train`` checkpoint (``checkpoint.pt``);
- a weight file: ``.safetensors``, or ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` (a plain timm
  state dict, or nested under ``state_dict`` / ``model`` like a PyTorch Lightning checkpoint,
  with the backbone under a prefix such as Lightly's ``backbone.``: the prefix is found from
  the keys, not guessed, and reported);
- a folder in the Hugging Face layout (``config.json`` beside ``model.safetensors`` or
  ``pytorch_model.bin``), e.g. OK-AI's LeJEPA ViTs or one of their ``checkpoints/epNNN``;
- ``hf:ORG/NAME[@REVISION][/SUBFOLDER]``: that folder on the Hugging Face Hub, downloaded once
  into huggingface_hub's cache (a network is needed the first time);
- a timm model name: timm's pretrained weights (a network is needed the first time).

ViT architectures are read from the weights' shapes (width, depth, patch size, tokens, layer
scale); other architectures need ``backbone=NAME``. Every load is strict: missing keys,
unexpected keys and shape mismatches end in a message that lists them. Files are read with
``torch.load(weights_only=True)`` or safetensors; a pickle that needs more (arbitrary code) is
refused unless ``trust=True`` says the file is trusted.
"""

from .hub import hub_folder, parse_hub
from .sources import (
    Backbone,
    encoder_from_checkpoint,
    load_backbone,
    load_encoder,
    save_backbone,
)
from .state import find_prefix, read_state, vit_architecture

__all__ = [
    "Backbone",
    "encoder_from_checkpoint",
    "find_prefix",
    "hub_folder",
    "load_backbone",
    "load_encoder",
    "parse_hub",
    "read_state",
    "save_backbone",
    "vit_architecture",
]
