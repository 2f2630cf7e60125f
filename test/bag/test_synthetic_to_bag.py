"""Tests for `seg_perception bag write-synthetic`."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from seg_perception import cli
from seg_perception.bag import BagReader
from seg_perception.bag.synthetic_to_bag import DEFAULT_START_NS, topic_names, write_synthetic_bag
from seg_perception.conversions.image import image_to_numpy


class _FakeCell:
    """A tiny deterministic stand-in for SyntheticCell (keeps the test independent and fast)."""

    def __init__(self, config) -> None:
        self.shape = (config.height, config.width)

    def render(self, *, seed: int):
        height, width = self.shape
        depth_m = np.full(self.shape, 0.5 + seed, np.float32)
        depth_m[0, 0] = np.nan
        return types.SimpleNamespace(
            rgb=np.full((height, width, 3), seed, np.uint8), depth_m=depth_m,
            labels=np.full(self.shape, seed % 6, np.uint8),
            instances=np.full(self.shape, seed, np.uint16),
            K=np.array([[50.0, 0, width / 2], [0, 50.0, height / 2], [0, 0, 1]]))


@pytest.fixture
def fake_synthetic(monkeypatch):
    module = types.SimpleNamespace(
        SyntheticCell=_FakeCell,
        SyntheticConfig=lambda **kw: types.SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, 'seg_perception.synthetic', module)


def test_cli_writes_all_topics_with_one_stamp_per_frame(tmp_path, fake_synthetic, capsys):
    out = tmp_path / 'synthetic'
    rc = cli.main(['bag', 'write-synthetic', '--out', str(out), '--frames', '3', '--seed', '7',
                   '--rate', '5', '--ns', 'cam', '--width', '8', '--height', '6',
                   '--no-progress'])
    assert rc == 0 and 'wrote 18 messages' in capsys.readouterr().out
    names = topic_names('cam')
    assert names['rgb'] == '/cam/color/image_raw' and names['labels'] == '/cam/ground_truth/labels'
    with BagReader(out) as reader:
        assert {t: i.message_count for t, i in reader.topics.items()} == dict.fromkeys(
            names.values(), 3)
        by_topic: dict[str, list] = {}
        for message in reader.messages():
            msg = reader.deserialize(message)
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            assert stamp_ns == message.log_time_ns
            by_topic.setdefault(message.topic, []).append((stamp_ns, msg))
    expected_stamps = [DEFAULT_START_NS + i * 200_000_000 for i in range(3)]
    assert all([s for s, _ in v] == expected_stamps for v in by_topic.values())
    rgb = [image_to_numpy(m) for _, m in by_topic[names['rgb']]]
    assert [int(r[0, 0, 0]) for r in rgb] == [7, 8, 9] and rgb[0].shape == (6, 8, 3)
    depth = image_to_numpy(by_topic[names['depth']][1][1])
    assert depth.dtype == np.float32 and np.isnan(depth[0, 0]) and depth[1, 1] == 8.5
    assert by_topic[names['labels']][0][1].encoding == 'mono8'
    assert by_topic[names['instances']][0][1].encoding == '16UC1'
    info = by_topic[names['color_info']][0][1]
    assert (info.width, info.height, info.k[0], info.p[2]) == (8, 6, 50.0, 4.0)


def test_existing_output_is_a_one_line_cli_error(tmp_path, fake_synthetic, capsys):
    rc = cli.main(['bag', 'write-synthetic', '--out', str(tmp_path), '--frames', '1',
                   '--no-progress'])
    assert rc == 1 and 'exists already' in capsys.readouterr().err


def test_real_synthetic_cell_bag(tmp_path):
    try:
        from seg_perception.synthetic import SyntheticCell  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'synthetic cell not available: {exc}')
    count = write_synthetic_bag(tmp_path / 'bag', frames=1, seed=3, rate_hz=10.0, width=160,
                                height=120, progress=False)
    assert count == 6
    with BagReader(tmp_path / 'bag') as reader:
        labels = [image_to_numpy(reader.deserialize(m)) for m in
                  reader.messages(topics=['/camera/ground_truth/labels'])]
    assert labels[0].shape == (120, 160) and labels[0].dtype == np.uint8
