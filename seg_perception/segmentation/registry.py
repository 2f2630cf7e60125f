"""Build segmentation networks by name: torchvision models and the project's own.

Every model built here returns ``{'out': logits}`` with logits of shape (N, C, H, W) at the input
size (torchvision's auxiliary heads are switched off; its models return an OrderedDict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

#: torchvision segmentation models (the VOC-pretrained heads have 21 classes)
TORCHVISION_ARCHITECTURES: tuple[str, ...] = (
    'fcn_resnet50',
    'fcn_resnet101',
    'deeplabv3_resnet50',
    'deeplabv3_resnet101',
    'deeplabv3_mobilenet_v3_large',
    'lraspp_mobilenet_v3_large',
)
#: the project's own architectures
PROJECT_ARCHITECTURES: tuple[str, ...] = ('unet_small', 'segnet', 'deeplabv3plus_mobilenet',
                                          'unet_mobilenetv2')
#: every name build_model accepts
ARCHITECTURES: tuple[str, ...] = PROJECT_ARCHITECTURES + TORCHVISION_ARCHITECTURES

_VOC_CLASSES = 21


class ModelBuildError(ValueError):
    """Raised when a model cannot be built as asked (bad name, arguments or weights)."""


class PretrainedWeightsUnavailableError(ModelBuildError):
    """Raised when pretrained weights are asked for but cannot be downloaded or found."""


def build_model(arch: str, *, num_classes: int, weights: str | Path | None = None,
                **kwargs: Any) -> nn.Module:
    """Build the network `arch` with `num_classes` outputs.

    weights: None for random initialisation; 'DEFAULT' for torchvision's pretrained weights (the
    classifier is replaced when num_classes != 21; for deeplabv3plus_mobilenet the ImageNet
    backbone); or a path to a state_dict (.pt/.pth), e.g. one written by save_checkpoint.
    kwargs go to the architecture's constructor (e.g. base_width for unet_small).
    """
    if arch not in ARCHITECTURES:
        raise ModelBuildError(f'unknown architecture {arch!r}; known: {", ".join(ARCHITECTURES)}')
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelBuildError(f'num_classes must be a positive int, got {num_classes!r}')
    pretrained = isinstance(weights, str) and weights.upper() == 'DEFAULT'
    try:
        if arch in TORCHVISION_ARCHITECTURES:
            model = _build_torchvision(arch, num_classes=num_classes, pretrained=pretrained,
                                       **kwargs)
        else:
            model = _build_project(arch, num_classes=num_classes, pretrained=pretrained,
                                   **kwargs)
    except TypeError as exc:  # unknown keyword for the constructor
        raise ModelBuildError(f'bad arguments for {arch!r}: {exc}') from exc
    if weights is not None and not pretrained:
        load_state_dict_file(model, weights)
    return model


def load_state_dict_file(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict file into `model` (strict); raise ModelBuildError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelBuildError(f'weights file {str(path)!r} does not exist (use weights=None, '
                              "'DEFAULT' or a path to a state_dict)")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt file
        raise ModelBuildError(f'cannot read weights file {str(path)!r}: {exc}') from exc
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ModelBuildError(f'{str(path)!r} does not hold a state_dict (got {type(state)})')
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelBuildError(f'weights in {str(path)!r} do not fit the model: {exc}') from exc
    return model


def _build_project(arch: str, *, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    if arch == 'unet_small':
        if pretrained:
            raise ModelBuildError('unet_small has no pretrained weights; use weights=None or '
                                  'a checkpoint path')
        from seg_perception.segmentation.unet import UNetSmall
        return UNetSmall(num_classes=num_classes, **kwargs)
    if arch == 'segnet':
        if pretrained:
            raise ModelBuildError('segnet has no pretrained weights; use weights=None or a '
                                  'checkpoint path')
        from seg_perception.segmentation.segnet import SegNetSmall
        return SegNetSmall(num_classes=num_classes, **kwargs)
    if arch == 'unet_mobilenetv2':
        if pretrained:
            raise ModelBuildError('unet_mobilenetv2 has no downloadable weights; make a '
                                  'checkpoint with a pretrained encoder with `seg_perception '
                                  'import-pretrained` and pass its path')
        from seg_perception.segmentation.mobilenetv2_unet import MobileNetV2UNet
        return MobileNetV2UNet(num_classes=num_classes, **kwargs)
    from seg_perception.segmentation.deeplabv3plus import DeepLabV3PlusMobileNet
    if pretrained:
        return _with_download_errors(arch, lambda: DeepLabV3PlusMobileNet(
            num_classes=num_classes, pretrained_backbone=True, **kwargs))
    return DeepLabV3PlusMobileNet(num_classes=num_classes, **kwargs)


def _build_torchvision(arch: str, *, num_classes: int, pretrained: bool,
                       **kwargs: Any) -> nn.Module:
    from torchvision.models import segmentation as tvseg
    factory = getattr(tvseg, arch)
    if not pretrained:
        # weights_backbone=None: torchvision would otherwise download an ImageNet backbone.
        return factory(weights=None, weights_backbone=None, num_classes=num_classes,
                       aux_loss=False, **kwargs)
    model = _with_download_errors(arch, lambda: factory(weights='DEFAULT', **kwargs))
    if hasattr(model, 'aux_classifier'):
        model.aux_classifier = None
    if num_classes != _VOC_CLASSES:
        _replace_head(arch, model, num_classes)
    return model


def _with_download_errors(arch: str, make: Callable[[], nn.Module]) -> nn.Module:
    try:
        return make()
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; hash checks raise Runtime
        raise PretrainedWeightsUnavailableError(
            f'pretrained weights for {arch!r} could not be downloaded or loaded ({exc}); use '
            'weights=None (random initialisation) or a checkpoint path') from exc


def _replace_head(arch: str, model: nn.Module, num_classes: int) -> None:
    """Replace the last classifier convolution(s) of a torchvision model."""
    if arch.startswith('lraspp'):
        head = model.classifier
        head.low_classifier = nn.Conv2d(head.low_classifier.in_channels, num_classes, 1)
        head.high_classifier = nn.Conv2d(head.high_classifier.in_channels, num_classes, 1)
        return
    last = model.classifier[-1]
    model.classifier[-1] = nn.Conv2d(last.in_channels, num_classes, 1)
