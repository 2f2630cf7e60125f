"""Use torchvision's Mask R-CNN (COCO) as a semantic segmenter that also yields instance ids.

How instances become a label map: detections with score >= `score_threshold` are kept, each
instance covers the pixels where its mask probability is >= `mask_threshold`, and where instances
overlap the highest-scoring one wins (equivalently: instances are painted in ascending score order,
so later, higher-scoring instances paint over earlier ones). Pixels with no instance are
`background` (id 0). Instance ids are 1..K in descending score order per frame (0 = none).

The semantic output is a pseudo-logit map (N, 91, h, w) whose softmax gives the winning
instance's score at its pixels (and 1 - the strongest mask weight for background), so the engine's
argmax/confidence/mask code works unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seg_perception.classes import ClassInfo, ClassSet

ARCHITECTURES = ('maskrcnn_resnet50_fpn', 'maskrcnn_resnet50_fpn_v2')
#: torchvision Mask R-CNN takes 0..1 RGB and normalises inside (GeneralizedRCNNTransform)
MEAN = (0.0, 0.0, 0.0)
STD = (1.0, 1.0, 1.0)


def _voc_colour(index: int) -> tuple[int, int, int]:
    """Return the Pascal VOC bit-interleaved palette colour of `index` (distinct, stable)."""
    r = g = b = 0
    c = index
    for shift in range(7, -1, -1):
        r |= ((c >> 0) & 1) << shift
        g |= ((c >> 1) & 1) << shift
        b |= ((c >> 2) & 1) << shift
        c >>= 3
    return r, g, b


def coco_class_set() -> ClassSet:
    """Return the 91-id COCO class set of torchvision's detection weights ('N/A' ids skipped)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights
    categories = MaskRCNN_ResNet50_FPN_Weights.DEFAULT.meta['categories']
    infos = []
    for class_id, name in enumerate(categories):
        if name == 'N/A':
            continue
        name = 'background' if class_id == 0 else name.replace(' ', '_')
        infos.append(ClassInfo(id=class_id, name=name, color=_voc_colour(class_id)))
    return ClassSet(infos)


class MaskRCNNSegmenter(nn.Module):
    """Wrap a torchvision Mask R-CNN: normalised (0..1) NCHW batch -> pseudo-logits + instances."""

    produces_instances = True

    def __init__(self, detector: nn.Module, *, num_outputs: int, score_threshold: float = 0.5,
                 mask_threshold: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 < mask_threshold < 1.0:
            raise ValueError(f'score_threshold {score_threshold} must be in [0, 1] and '
                             f'mask_threshold {mask_threshold} in (0, 1)')
        self.detector = detector.eval()
        self.num_outputs = num_outputs
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) pseudo-logits (see forward_with_instances for the instances)."""
        return self.forward_with_instances(batch)[0]

    def forward_with_instances(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return pseudo-logits (N, C, h, w) float32 and instance ids (N, h, w) int32."""
        detections = self.detector(list(batch.float()))
        height, width = batch.shape[-2:]
        logits = torch.zeros((batch.shape[0], self.num_outputs, height, width),
                             dtype=torch.float32, device=batch.device)
        instances = torch.zeros((batch.shape[0], height, width), dtype=torch.int32,
                                device=batch.device)
        spread = math.log(max(self.num_outputs - 1, 1))
        for i, det in enumerate(detections):
            keep = det['scores'] >= self.score_threshold
            scores = det['scores'][keep]
            order = torch.argsort(scores, descending=True)
            scores = scores[order]
            classes = det['labels'][keep][order]
            masks = det['masks'][keep][order][:, 0]  # K, h, w probabilities
            if scores.numel() == 0:
                logits[i, 0] = 10.0
                continue
            weight = (masks >= self.mask_threshold) * scores.view(-1, 1, 1)
            best_weight, best = weight.max(dim=0)  # ties -> lowest index = highest score
            covered = best_weight > 0
            instances[i] = torch.where(covered, best.to(torch.int32) + 1, 0)
            # softmax(one logit L, the rest 0) = p  <=>  L = log(p / (1 - p)) + log(C - 1)
            p = torch.where(covered, best_weight, 1.0 - (masks * scores.view(-1, 1, 1)).amax(0))
            p = p.clamp(1.0 / self.num_outputs + 1e-4, 1.0 - 1e-4)
            value = torch.log(p / (1.0 - p)) + spread
            winner = torch.where(covered, classes[best], 0)
            logits[i].scatter_(0, winner.unsqueeze(0).long(), value.unsqueeze(0))
        return logits, instances


def build_maskrcnn(arch: str, *, weights: str | None, input_size: tuple[int, int],
                   score_threshold: float = 0.5, mask_threshold: float = 0.5
                   ) -> MaskRCNNSegmenter:
    """Build `arch` (random or torchvision 'DEFAULT' COCO weights) as a MaskRCNNSegmenter.

    The detector's internal resize is set to the network input size so that it does not upscale
    frames to 800 px (slow on CPU); pass a larger input_size for small objects.
    """
    from torchvision.models import detection
    if arch not in ARCHITECTURES:
        raise ValueError(f'unknown Mask R-CNN {arch!r}; known: {", ".join(ARCHITECTURES)}')
    factory = getattr(detection, arch)
    height, width = input_size
    kwargs = {'min_size': min(height, width), 'max_size': max(height, width)}
    if weights is None:
        detector = factory(weights=None, weights_backbone=None, num_classes=91, **kwargs)
    else:
        detector = factory(weights=weights, **kwargs)
    return MaskRCNNSegmenter(detector, num_outputs=91, score_threshold=score_threshold,
                             mask_threshold=mask_threshold)
