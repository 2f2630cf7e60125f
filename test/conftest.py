"""Shared pytest set-up: ROS isolation for the whole test process, and common fixtures."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_harness import isolate_ros_environment, RosTestNode, SHARED_DATA  # noqa: E402

# Before any test imports rclpy: private domain, localhost discovery, logs in build/.
isolate_ros_environment()


@pytest.fixture
def ros_probe():
    """Yield an rclpy node spinning in the background, in its own context."""
    with RosTestNode() as probe:
        yield probe


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """Return ../shared/data, or skip when the shared folder is not next to the repository."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'shared data folder {SHARED_DATA} is absent')
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch CPU thread (steady timing beside other tests), then restore."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
