"""Smoke test of `seg_perception demo`: real node processes for a few seconds, folder contents."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ros_harness import REPO_ROOT
from seg_perception.bag.reader import BagReader
from seg_perception.demo import TOPICS

pytest.importorskip('rclpy', reason='rclpy is not installed')
pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_writes_bag_report_and_overlay(tmp_path) -> None:
    out = tmp_path / 'demo'
    # unet_small with random weights frozen by the demo: real inference, fast to build.
    result = subprocess.run(
        [sys.executable, '-m', 'seg_perception.cli', 'demo', '--out', str(out), '--duration',
         '5', '--width', '160', '--height', '128', '--model', 'unet_small', '--no-progress'],
        capture_output=True, text=True, timeout=85, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ('frames:', 'mIoU:', 'fps:', 'latency:', 'candidates:'):
        assert any(row.startswith(line) for row in result.stdout.splitlines()), result.stdout
    for name in ('report.md', 'report.json', 'confusion_matrix.png', 'per_class_iou.png',
                 'latency_histogram.png', 'samples.png', 'logs/segmentation_node.log',
                 'logs/grasp_assist_node.log', 'logs/synthetic_camera.log',
                 'logs/bag_recorder.log', 'bag/metadata.yaml'):
        assert (out / name).is_file(), name
    doc = json.loads((out / 'report.json').read_text())
    acc = doc['accounting']
    assert acc['frames_in'] == acc['frames_processed'] + acc['frames_dropped'] > 0
    assert acc['frames_processed'] > 0
    online, offline = doc['offline_comparison']['rows'][:2]
    assert 0 < online['frames'] == offline['frames'] <= acc['frames_processed']
    assert abs(doc['offline_comparison']['difference']) <= 0.02
    with BagReader(out / 'bag') as bag:
        assert set(TOPICS.values()) <= set(bag.topics)
        assert bag.topics[TOPICS['color']].message_count == acc['frames_in']
    grasp = doc['details']['grasp']
    if grasp['max']:
        assert (out / 'grasp_overlay.png').read_bytes()[:4] == b'\x89PNG'
