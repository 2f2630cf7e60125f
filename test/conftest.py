"""Shared pytest set-up: ROS isolation for the whole test process, and common fixtures."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_harness import isolate_ros_environment, RosTestNode, SHARED_DATA  # noqa: E402

# Before any test imports rclpy: private domain, localhost discovery, logs in build/.
isolate_ros_environment()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path,
                                parent: pytest.Collector) -> pytest.Module | None:
    """Collect test files as plain pytest does, before launch_testing's plugin (in ROS installs).

    That plugin imports each test file itself (prepend mode, ignoring --import-mode) to look for
    generate_test_description; a module-level skip raised there ends the collection of the rest
    of the folder, so the other test files in it vanish without a report. Files that do define
    generate_test_description are still left to launch_testing.
    """
    if 'generate_test_description' in module_path.read_text(encoding='utf-8', errors='replace'):
        return None
    return pytest.Module.from_parent(parent, path=module_path)


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
