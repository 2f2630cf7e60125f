"""Tiny models with sidecars for the segmentation tests (no downloads, a few KB each)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from seg_perception.classes import ClassSet
from seg_perception.segmentation.model_spec import ModelSpec

#: the first three default classes: background (red pixels), tote (green), box (blue)
COLOUR_CLASSES = ClassSet.default().to_list()[:3]


class ColourClassifier(nn.Module):
    """Label each pixel by its dominant RGB channel (0 red, 1 green, 2 blue), at half size."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {'out': nn.functional.avg_pool2d(x, 2) * 10.0}


def colour_model(folder: Path, input_size: tuple[int, int] = (32, 32)) -> Path:
    """Write a TorchScript colour classifier with its sidecar; return the .ts path."""
    path = folder / 'colour.ts'
    scripted = torch.jit.trace(ColourClassifier(), torch.zeros(1, 3, *input_size), strict=False)
    scripted.save(str(path))
    spec = ModelSpec(arch='colour_classifier', class_set=ClassSet.from_list(COLOUR_CLASSES),
                     input_size=input_size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                     model_name='colour')
    path.with_suffix('.json').write_text(json.dumps(spec.to_dict()), encoding='utf-8')
    return path


def tiny_unet_spec(input_size: tuple[int, int] = (32, 48)) -> ModelSpec:
    """Return the spec of a very small unet_small (random weights)."""
    return ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=input_size,
                     model_name='tiny_unet', arch_kwargs={'base_width': 4, 'levels': 2})
