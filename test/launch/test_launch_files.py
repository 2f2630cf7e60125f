"""Static checks of the launch files, the RViz config and the Fast DDS profile (no launch needed).

The launch files are read as Python source (ROS 2 launch is not on PyPI); what they wire must
agree with the nodes' defaults, the parameter files and the synthetic camera's frame.
"""

from __future__ import annotations

import ast
from pathlib import Path
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

from ros_harness import REPO_ROOT
from seg_perception.segmentation.node_settings import camera_prefix

LAUNCH_DIR = REPO_ROOT / 'launch'
LAUNCH_FILES = sorted(LAUNCH_DIR.glob('*.launch.py'))
CONFIG_DIR = REPO_ROOT / 'config'
# Arguments whose values are a fixed set: they must declare `choices`.
FIXED_CHOICES = {'device': ['auto', 'cpu', 'cuda'], 'precision': ['fp32', 'fp16', 'bf16'],
                 'log_level': ['debug', 'info', 'warn', 'error']}
BOOLEAN_ARGUMENTS = {'use_shm_transport', 'use_synthetic_camera', 'rviz', 'bag_loop'}
IMAGE_BYTES_640X480_RGB8 = 640 * 480 * 3


def declared_arguments(path: Path) -> dict[str, dict[str, ast.expr]]:
    """Return {argument name: {keyword: AST value}} of every DeclareLaunchArgument in a file."""
    tree = ast.parse(path.read_text(encoding='utf-8'))
    constants = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument':
            keywords = {k.arg: constants.get(getattr(k.value, 'id', None), k.value)
                        for k in node.keywords}
            out[ast.literal_eval(node.args[0])] = keywords
    return out


def literal(node: ast.expr | None) -> object:
    return None if node is None else ast.literal_eval(node)


def test_the_three_launch_files_exist() -> None:
    assert [p.name for p in LAUNCH_FILES] == [
        'grasp_assist.launch.py', 'perception.launch.py', 'segmentation.launch.py']


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_argument_has_a_description_and_fixed_sets_have_choices(path: Path) -> None:
    arguments = declared_arguments(path)
    assert arguments, f'{path.name} declares no arguments'
    for name, keywords in arguments.items():
        assert literal(keywords.get('description')), f'{path.name}: {name} has no description'
        if name in FIXED_CHOICES:
            assert literal(keywords.get('choices')) == FIXED_CHOICES[name], name
        if name in BOOLEAN_ARGUMENTS:
            assert literal(keywords.get('choices')) == ['true', 'false'], name
            assert literal(keywords['default_value']) in ('true', 'false'), name


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_only_the_launch_api_is_imported(path: Path) -> None:
    # Installed launch files run from share/: they cannot import siblings or project modules.
    tree = ast.parse(path.read_text(encoding='utf-8'))
    modules = {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    assert modules <= {'launch', 'launch_ros'}, f'{path.name} imports {sorted(modules)}'


def test_labels_topic_defaults_match_the_segmentation_output_of_image_topic() -> None:
    perception = declared_arguments(LAUNCH_DIR / 'perception.launch.py')
    grasp = declared_arguments(LAUNCH_DIR / 'grasp_assist.launch.py')
    segmentation = declared_arguments(LAUNCH_DIR / 'segmentation.launch.py')
    image_topic = literal(segmentation['image_topic']['default_value'])
    assert literal(perception['image_topic']['default_value']) == image_topic
    prefix, compressed = camera_prefix(image_topic)
    expected = f'{prefix}/segmentation/labels'
    assert not compressed
    assert literal(perception['labels_topic']['default_value']) == expected
    assert literal(grasp['labels_topic']['default_value']) == expected


def test_grasp_topic_defaults_match_the_parameter_file() -> None:
    params = yaml.safe_load((CONFIG_DIR / 'grasp_assist.yaml').read_text())
    params = params['/**']['ros__parameters']
    for path in (LAUNCH_DIR / 'perception.launch.py', LAUNCH_DIR / 'grasp_assist.launch.py'):
        arguments = declared_arguments(path)
        for name in ('labels_topic', 'depth_topic', 'camera_info_topic', 'color_topic'):
            assert literal(arguments[name]['default_value']) == params[name], (path.name, name)


def rviz_displays() -> tuple[dict[str, dict], dict]:
    config = yaml.safe_load((CONFIG_DIR / 'seg_perception.rviz').read_text())
    manager = config['Visualization Manager']
    return {d['Class']: d for d in manager['Displays']}, manager['Global Options']


def test_rviz_shows_overlay_points_markers_and_poses_of_the_default_namespace() -> None:
    displays, _ = rviz_displays()
    topics = {cls: d['Topic']['Value'] for cls, d in displays.items() if 'Topic' in d}
    assert topics == {
        'rviz_default_plugins/Image': '/camera/color/segmentation/overlay',
        'rviz_default_plugins/PointCloud2': '/camera/grasp/graspable_points',
        'rviz_default_plugins/MarkerArray': '/camera/grasp/markers',
        'rviz_default_plugins/PoseArray': '/camera/grasp/candidate_poses',
    }
    cloud = displays['rviz_default_plugins/PointCloud2']
    # The grasp cloud carries 'rgb' (class colours, or the camera's when color_topic is set).
    assert cloud['Color Transformer'] == 'RGB8'
    assert cloud['Channel Name'] == 'label'


def test_rviz_fixed_frame_is_the_synthetic_camera_frame() -> None:
    from seg_perception.nodes.synthetic_camera_node import PARAMETERS
    frame_id = next(p.default for p in PARAMETERS if p.name == 'frame_id')
    _, options = rviz_displays()
    assert options['Fixed Frame'] == frame_id


def test_fastdds_profile_adds_a_16_mib_shared_memory_transport_and_udp() -> None:
    ns = {'dds': 'http://www.eprosima.com'}
    root = ElementTree.parse(CONFIG_DIR / 'fastdds_shm.xml').getroot()
    descriptors = {d.findtext('dds:transport_id', namespaces=ns): d
                   for d in root.iterfind('dds:profiles/dds:transport_descriptors/'
                                          'dds:transport_descriptor', ns)}
    types = {tid: d.findtext('dds:type', namespaces=ns) for tid, d in descriptors.items()}
    assert sorted(types.values()) == ['SHM', 'UDPv4']
    shm = next(d for tid, d in descriptors.items() if types[tid] == 'SHM')
    segment_bytes = int(shm.findtext('dds:segment_size', namespaces=ns))
    max_message_bytes = int(shm.findtext('dds:maxMessageSize', namespaces=ns))
    assert segment_bytes >= 16 * 2**20
    assert IMAGE_BYTES_640X480_RGB8 < max_message_bytes <= segment_bytes
    participant = root.find('dds:profiles/dds:participant', ns)
    assert participant.get('is_default_profile') == 'true'
    used = [t.text for t in participant.iterfind('dds:rtps/dds:userTransports/'
                                                 'dds:transport_id', ns)]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext('dds:rtps/dds:useBuiltinTransports', namespaces=ns) == 'false'
