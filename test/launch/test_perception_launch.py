"""perception.launch.py for real: synthetic camera -> segmentation -> grasp assist, then Ctrl-C.

launch_pytest starts launch/perception.launch.py, which finds the node launch files, parameter
files and executables in the installed package (build with scripts/setup_env.sh and source
install/setup.bash); a probe node in this process checks what the pipeline publishes, and after
the launch shuts down every process must have exited cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path
import threading
from typing import Any

from geometry_msgs.msg import PoseArray
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_harness import REPO_ROOT, wait_until

launch_pytest = pytest.importorskip(
    'launch_pytest', reason='ROS 2 launch (launch, launch_ros, launch_pytest) is not installed: '
                            'it ships with a ROS distribution, not with PyPI')
launch = pytest.importorskip('launch')
launch_ros = pytest.importorskip('launch_ros')
ament_index_python = pytest.importorskip('ament_index_python')

try:
    ament_index_python.get_package_share_directory('seg_perception')
except ament_index_python.PackageNotFoundError:
    pytest.skip('seg_perception is not installed: run scripts/setup_env.sh and source '
                'install/setup.bash', allow_module_level=True)

pytestmark = pytest.mark.ros

LAUNCH_FILE = REPO_ROOT / 'launch' / 'perception.launch.py'
EXECUTABLES = {'synthetic_camera_node', 'segmentation_node', 'grasp_assist_node'}
# Random weights, real inference: fast to load, and independent of the trained default model.
LAUNCH_ARGUMENTS = {'use_synthetic_camera': 'true', 'rviz': 'false', 'model': 'unet_small',
                    'device': 'cpu', 'precision': 'fp32', 'camera_rate_hz': '4.0'}
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# Model loading and warm-up on a shared 2-core machine can take a while.
FIRST_RESULTS_TIMEOUT_S = 150.0


class ProcessRecord:
    """Output and exit status of every process the launch started (filled by launch events)."""

    def __init__(self) -> None:
        self.exit_codes: dict[str, int] = {}
        self.output: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _executable(event: Any) -> str:
        return Path(event.cmd[0]).name

    def on_output(self, event: Any) -> None:
        with self._lock:
            self.output.setdefault(self._executable(event), []).append(
                event.text.decode(errors='replace'))

    def on_exit(self, event: Any, context: Any) -> None:
        with self._lock:
            self.exit_codes[self._executable(event)] = event.returncode

    def text(self, executable: str) -> str:
        with self._lock:
            return ''.join(self.output.get(executable, []))


@pytest.fixture(scope='module', autouse=True)
def restore_environment() -> Any:
    """Give the test process its environment back once this module's launch is over.

    launch runs in this process: the launch file's SetEnvironmentVariable (the Fast DDS SHM
    profile) changes os.environ, and later tests that need stock transport would inherit it.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope='module')
def processes() -> ProcessRecord:
    return ProcessRecord()


@launch_pytest.fixture(scope='module')
def perception(processes: ProcessRecord) -> Any:
    """Launch the whole pipeline with the synthetic camera, recording output and exit codes."""
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch.event_handlers import OnProcessExit, OnProcessIO
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    return launch.LaunchDescription([
        RegisterEventHandler(OnProcessIO(on_stdout=processes.on_output,
                                         on_stderr=processes.on_output)),
        RegisterEventHandler(OnProcessExit(on_exit=processes.on_exit)),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                 launch_arguments=LAUNCH_ARGUMENTS.items()),
        launch_pytest.actions.ReadyToTest(),
    ])


def stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def stamps_within(messages: list[Any], reference: list[Any]) -> list[int]:
    """Return the stamps of `messages` that fall inside the span of `reference` stamps."""
    ref = [stamp_ns(m) for m in reference]
    return [stamp_ns(m) for m in messages if ref and min(ref) <= stamp_ns(m) <= max(ref)]


@pytest.mark.launch(fixture=perception)
def test_labels_masks_and_candidates_carry_the_camera_stamps(ros_probe, processes) -> None:
    from seg_interfaces.msg import GraspCandidateArray  # built by colcon: after the skips

    colour = ros_probe.subscribe(Image, '/camera/color/image_raw', RELIABLE)
    depth = ros_probe.subscribe(Image, '/camera/depth/image_rect', RELIABLE)
    labels = ros_probe.subscribe(Image, '/camera/color/segmentation/labels', RELIABLE)
    box_masks = ros_probe.subscribe(Image, '/camera/color/segmentation/masks/box', RELIABLE)
    candidates = ros_probe.subscribe(GraspCandidateArray, '/camera/grasp/candidates', RELIABLE)
    poses = ros_probe.subscribe(PoseArray, '/camera/grasp/candidate_poses', RELIABLE)

    def enough() -> bool:
        return min(len(labels), len(box_masks), len(candidates), len(poses)) >= 4

    done = wait_until(enough, FIRST_RESULTS_TIMEOUT_S, interval_s=0.2)
    assert done, (
        f'after {FIRST_RESULTS_TIMEOUT_S} s: colour {len(colour)}, depth {len(depth)}, labels '
        f'{len(labels)}, masks/box {len(box_masks)}, candidates {len(candidates)}, poses '
        f'{len(poses)}; exited: {processes.exit_codes}; segmentation_node output:\n'
        + processes.text('segmentation_node')[-2000:])
    assert not processes.exit_codes, f'processes exited while running: {processes.exit_codes}'

    colour_msgs, depth_msgs = colour.messages, depth.messages
    colour_stamps = {stamp_ns(m) for m in colour_msgs}
    depth_stamps = {stamp_ns(m) for m in depth_msgs}
    label_msgs = labels.messages
    label_stamps = stamps_within(label_msgs, colour_msgs)
    assert len(label_stamps) >= 2, 'too few labels inside the received colour stream'
    # Labels (and masks) keep the header of the colour image they were computed from.
    assert set(label_stamps) <= colour_stamps
    assert set(stamps_within(box_masks.messages, colour_msgs)) <= colour_stamps
    for msg in label_msgs:
        assert (msg.width, msg.height, msg.encoding) == (640, 480, 'mono8')
        assert msg.header.frame_id == colour_msgs[0].header.frame_id
    # Candidates keep the header of the depth image they were computed from, and the synthetic
    # camera stamps colour and depth alike, so they also match a label stamp.
    candidate_stamps = stamps_within(candidates.messages, depth_msgs)
    assert len(candidate_stamps) >= 2, 'too few candidate arrays inside the received depth stream'
    assert set(candidate_stamps) <= depth_stamps
    assert set(candidate_stamps) <= colour_stamps
    assert set(stamps_within(poses.messages, depth_msgs)) <= depth_stamps
    for msg in [*candidates.messages, *poses.messages]:
        assert msg.header.frame_id == depth_msgs[0].header.frame_id


@pytest.mark.launch(fixture=perception, shutdown=True)
def test_every_process_exits_cleanly_on_shutdown(processes) -> None:
    assert set(processes.exit_codes) == EXECUTABLES, (
        f'exit codes seen for {sorted(processes.exit_codes)}, expected {sorted(EXECUTABLES)}')
    for executable, code in sorted(processes.exit_codes.items()):
        output = processes.text(executable)
        assert code == 0, f'{executable} exited with {code}:\n{output[-2000:]}'
        assert 'Traceback' not in output, f'{executable} printed a traceback:\n{output[-4000:]}'
