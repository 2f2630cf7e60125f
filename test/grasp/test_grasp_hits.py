"""Tests of the grasp hit-rate evaluation (face test golden cases, a short synthetic run)."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.evaluation.grasp_hits import (candidate_on_face, evaluate_hits,
                                                  HitCriteria, synthetic_frames)
from seg_perception.grasp.candidates import grasp_frame, GraspCandidate, quaternion_from_matrix

FACE_CENTER = np.array([0.0, 0.0, 0.8])
FACE_NORMAL = np.array([0.0, 0.0, -1.0])
FACE = np.array([[-0.1, -0.05, 0.8], [0.1, -0.05, 0.8], [0.1, 0.05, 0.8], [-0.1, 0.05, 0.8]])


def _candidate(position, normal) -> GraspCandidate:
    rotation = grasp_frame(np.asarray(normal, float), np.array([1.0, 0.0, 0.0]))
    return GraspCandidate(position=np.asarray(position, float), rotation=rotation,
                          quaternion=quaternion_from_matrix(rotation), kind='suction',
                          class_id=2, class_name='box', region_id=1, score=1.0, area_m2=0.02,
                          flatness_rms_m=0.0, extent_m=(0.2, 0.1), point_count=100,
                          pixel=(0, 0))


@pytest.mark.parametrize('position, normal, hit', [
    ([0.05, 0.02, 0.8], [0, 0, -1], True),
    ([0.05, 0.02, 0.805], [0, 0, -1], True),                  # within 1 cm of the plane
    ([0.05, 0.02, 0.82], [0, 0, -1], False),                  # 2 cm off the plane
    ([0.15, 0.02, 0.8], [0, 0, -1], False),                   # outside the outline
    ([0.0, 0.0, 0.8], [np.sin(0.3), 0, -np.cos(0.3)], False),  # 17 degrees off
    ([0.0, 0.0, 0.8], [np.sin(0.1), 0, -np.cos(0.1)], True),   # 5.7 degrees off
])
def test_candidate_on_face(position, normal, hit):
    cand = _candidate(position, normal)
    assert candidate_on_face(cand, FACE_CENTER, FACE_NORMAL, FACE, HitCriteria()) is hit


def test_short_synthetic_run():
    pytest.importorskip('seg_perception.synthetic')
    report = evaluate_hits(synthetic_frames(3, first_seed=100000))
    assert report.frames == 3
    assert report.hits <= report.targets
    assert report.candidates_per_frame > 0
