"""config/*.yaml must list exactly the parameters each node declares (no typo goes unnoticed)."""

from __future__ import annotations

import pytest
import yaml

from ros_harness import REPO_ROOT

pytest.importorskip('rclpy', reason='rclpy is not installed')

from seg_perception.nodes import grasp_assist_node, segmentation_node  # noqa: E402


@pytest.mark.parametrize('config, module', [
    ('segmentation.yaml', segmentation_node),
    ('grasp_assist.yaml', grasp_assist_node),
])
def test_yaml_keys_match_declared_parameters(config, module) -> None:
    doc = yaml.safe_load((REPO_ROOT / 'config' / config).read_text())
    (section,) = doc.values()
    in_yaml = set(section['ros__parameters'])
    declared = {spec.name for spec in module.PARAMETERS}
    assert in_yaml == declared, (f'only in YAML: {sorted(in_yaml - declared)}; '
                                 f'only declared: {sorted(declared - in_yaml)}')


@pytest.mark.parametrize('config, module', [
    ('segmentation.yaml', segmentation_node),
    ('grasp_assist.yaml', grasp_assist_node),
])
def test_yaml_values_are_the_declared_defaults(config, module) -> None:
    doc = yaml.safe_load((REPO_ROOT / 'config' / config).read_text())
    (section,) = doc.values()
    values = section['ros__parameters']
    for spec in module.PARAMETERS:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        assert values[spec.name] == pytest.approx(default) if isinstance(default, float) \
            else values[spec.name] == default, spec.name


def test_grasp_parameters_build_the_pipeline_configuration() -> None:
    doc = yaml.safe_load((REPO_ROOT / 'config' / 'grasp_assist.yaml').read_text())
    (section,) = doc.values()
    config = grasp_assist_node.grasp_config_from_parameters(section['ros__parameters'])
    assert config.graspable_classes == ('box', 'polybag', 'envelope', 'cylinder')
    assert config.workspace_min is None


def test_segmentation_settings_refuse_bad_values() -> None:
    from seg_perception.segmentation.node_settings import (SegmentationNodeSettings,
                                                           SettingsError)
    doc = yaml.safe_load((REPO_ROOT / 'config' / 'segmentation.yaml').read_text())
    (section,) = doc.values()
    base = section['ros__parameters']
    SegmentationNodeSettings.from_mapping(base)
    for key, value, expected in [('overlay_alpha', 2.0, 'overlay_alpha'),
                                 ('device', 'tpu', 'device'),
                                 ('image_topics', [], 'image_topics'),
                                 ('input_size', [1, 2, 3], 'input_size'),
                                 ('qos_reliability', 'sometimes', 'qos_reliability')]:
        with pytest.raises(SettingsError, match=expected):
            SegmentationNodeSettings.from_mapping({**base, key: value})
