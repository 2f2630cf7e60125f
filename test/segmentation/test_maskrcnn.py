"""Tests of the Mask R-CNN adapter: overlap rule on a fake detector, and the real builder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
from seg_perception.segmentation.maskrcnn import coco_class_set, MaskRCNNSegmenter

torch.set_num_threads(2)


class FakeDetector(nn.Module):
    """Return two overlapping detections (and one below the score threshold) per image."""

    def forward(self, images):
        h, w = images[0].shape[-2:]
        masks = torch.zeros((3, 1, h, w))
        masks[0, 0, 2:6, 2:6] = 0.9   # score 0.6, class 1 (person)
        masks[1, 0, 4:8, 4:8] = 0.8   # score 0.9, class 3 (car): wins the overlap
        masks[2, 0, 0:2, 6:8] = 0.9   # score 0.2: dropped
        det = {'scores': torch.tensor([0.6, 0.9, 0.2]), 'labels': torch.tensor([1, 3, 5]),
               'masks': masks, 'boxes': torch.zeros((3, 4))}
        return [det for _ in images]


def test_highest_score_wins_overlaps_and_ids_follow_score_order():
    seg = MaskRCNNSegmenter(FakeDetector(), num_outputs=91, score_threshold=0.5)
    logits, instances = seg.forward_with_instances(torch.zeros(2, 3, 8, 8))
    assert logits.shape == (2, 91, 8, 8) and instances.shape == (2, 8, 8)
    labels = logits.argmax(1)[0]
    assert labels[3, 3] == 1 and instances[0, 3, 3] == 2        # person only
    assert labels[5, 5] == 3 and instances[0, 5, 5] == 1        # overlap: car (0.9) wins
    assert labels[0, 7] == 0 and instances[0, 0, 7] == 0        # low score dropped
    conf = torch.softmax(logits[0], 0).amax(0)
    torch.testing.assert_close(conf[5, 5], torch.tensor(0.9), atol=1e-3, rtol=0)
    torch.testing.assert_close(conf[3, 3], torch.tensor(0.6), atol=1e-3, rtol=0)


def test_coco_class_set_is_valid():
    classes = coco_class_set()
    assert classes.num_outputs == 91
    assert classes.by_id(1).name == 'person' and classes.by_name('traffic_light').id == 10
    assert classes.by_id(0).name == 'background'


def test_maskrcnn_engine_builds_without_weights(tmp_path):
    engine = SegmentationEngine(EngineConfig(model='maskrcnn_resnet50_fpn', device='cpu',
                                             input_size=(64, 64), warmup_iterations=0))
    assert engine.class_set.num_outputs == 91
    frames = [np.full((48, 80, 3), 120, np.uint8), np.zeros((64, 64, 3), np.uint8)]
    results = engine.segment(frames, confidence=True, counts=True)
    for frame, r in zip(frames, results):
        assert r.labels.shape == frame.shape[:2] and r.labels.dtype == np.uint8
        assert r.instances.shape == frame.shape[:2] and r.instances.dtype == np.uint16
        assert r.class_pixel_counts.shape == (91,)


def test_bad_thresholds_are_rejected():
    with pytest.raises(ValueError, match='score_threshold'):
        MaskRCNNSegmenter(FakeDetector(), num_outputs=91, score_threshold=1.5)
