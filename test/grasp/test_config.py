"""Tests of GraspConfig validation."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.classes import ClassSet
from seg_perception.grasp.config import GraspConfig


def test_defaults():
    config = GraspConfig()
    assert config.graspable_classes == tuple(c.name for c in ClassSet.default().graspable())
    assert config.cup_radius_m == 0.015
    np.testing.assert_allclose(config.gravity, [0, 0, 1])
    assert config.base_from_camera_matrix is None


@pytest.mark.parametrize('kwargs, field', [
    ({'erosion_px': -1}, 'erosion_px'),
    ({'erosion_px': 1.5}, 'erosion_px'),
    ({'discontinuity_m': 0.0}, 'discontinuity_m'),
    ({'cup_radius_m': float('nan')}, 'cup_radius_m'),
    ({'min_depth_m': 2.0, 'max_depth_m': 1.0}, 'min_depth_m'),
    ({'workspace_min': (0, 0, 0)}, 'workspace_min'),
    ({'workspace_min': (0, 0, 0), 'workspace_max': (1, -1, 1)}, 'workspace_min'),
    ({'workspace_min': (0, 0), 'workspace_max': (1, 1)}, 'workspace_min'),
    ({'base_from_camera': tuple(range(16))}, 'base_from_camera'),
    ({'gravity_direction': (0, 0, 0)}, 'gravity_direction'),
    ({'plane_fit': 'svd'}, 'plane_fit'),
    ({'max_approach_angle_deg': 120.0}, 'max_approach_angle_deg'),
    ({'min_score': 2.0}, 'min_score'),
    ({'graspable_classes': 'box'}, 'graspable_classes'),
    ({'organized_cloud': 1}, 'organized_cloud'),
    ({'max_candidates': True}, 'max_candidates'),
])
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GraspConfig(**kwargs)


def test_normalisation_and_from_mapping():
    config = GraspConfig.from_mapping({'graspable_classes': ['box'],
                                       'gravity_direction': [0, 2, 0],
                                       'workspace_min': [-1, -1, 0], 'workspace_max': [1, 1, 2],
                                       'base_from_camera': list(np.eye(4).ravel())})
    assert config.graspable_classes == ('box',)
    assert config.gravity_direction == (0.0, 1.0, 0.0)
    np.testing.assert_allclose(config.base_from_camera_matrix, np.eye(4))
    with pytest.raises(ValueError, match='unknown grasp config keys'):
        GraspConfig.from_mapping({'cup_radius': 0.01})


def test_keyword_only():
    with pytest.raises(TypeError):
        GraspConfig(('box',))
