"""Linters as tests (ament_flake8, ament_pep257), plus the architecture rule on rclpy imports."""

from __future__ import annotations

import ast

import pytest

from ros_harness import REPO_ROOT

PYTHON_DIRS = ['seg_perception', 'test', 'launch', 'setup.py']


def test_flake8() -> None:
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    argv = ['--config', str(REPO_ROOT / 'setup.cfg'), *(str(REPO_ROOT / p) for p in PYTHON_DIRS)]
    rc, errors = main_with_errors(argv=argv)
    assert rc == 0, f'{len(errors)} flake8 errors:\n' + '\n'.join(errors[:50])


def test_pep257() -> None:
    main = pytest.importorskip('ament_pep257.main').main
    # ament convention, but summaries may start on the first line (D213 off), as in PEP 257.
    rc = main(argv=['--add-ignore', 'D213', '--',
                    str(REPO_ROOT / 'seg_perception'), str(REPO_ROOT / 'launch')])
    assert rc == 0, 'pep257 docstring errors (see output above)'


ROS_CLIENT_MODULES = ('rclpy', 'launch', 'launch_ros')
ALLOWED = ('seg_perception/nodes/',)


def test_only_nodes_import_rclpy() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / 'seg_perception').rglob('*.py')):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith(ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f'{rel}: {n}' for n in names if n.split('.')[0] in ROS_CLIENT_MODULES]
    assert not offenders, 'ROS client imports outside seg_perception/nodes/:\n' + \
        '\n'.join(offenders)


def test_no_two_test_files_share_a_base_name() -> None:
    """launch_testing's pytest plugin (in every ROS install) and colcon test import each test
    file by its base name: two test_cli.py in different folders stop collection there with
    ImportPathMismatchError, although --import-mode=importlib hides it here."""
    by_name: dict[str, list[str]] = {}
    for path in sorted((REPO_ROOT / 'test').rglob('*.py')):
        by_name.setdefault(path.name, []).append(path.relative_to(REPO_ROOT).as_posix())
    shared = {name: paths for name, paths in by_name.items()
              if len(paths) > 1 and name != '__init__.py'}
    assert not shared, f'test files sharing a base name: {shared}'
