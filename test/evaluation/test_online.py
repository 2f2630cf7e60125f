"""Bag evaluation: offline over every frame, online through real nodes, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ros_harness import REPO_ROOT, SHARED_DATA
from seg_perception.bag.messages import image_message
from seg_perception.bag.reader import BagReader, default_typestore
from seg_perception.bag.synthetic_to_bag import write_synthetic_bag
from seg_perception.bag.writer import BagWriter
from seg_perception.evaluation.online import evaluate_bag_offline, evaluate_bag_online, \
    EvaluationInputError

IMAGE = '/camera/color/image_raw'
GT = '/camera/ground_truth/labels'
MODEL = 'unet_small'  # random weights: real inference; quality is not what these tests check
REALSENSE = SHARED_DATA / 'realsense_bag' / 'rs_ros2_mcap'
REALSENSE_COLOR = '/device_0/sensor_1/Color_0/image/data'


@pytest.fixture(scope='module')
def synthetic_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('bags') / 'synthetic'
    write_synthetic_bag(path, frames=4, seed=100_000, rate_hz=5.0, width=160, height=128,
                        progress=False)
    return path


def evaluate_cli(*args: str) -> list[str]:
    return [sys.executable, '-m', 'seg_perception.cli', 'evaluate', '--model', MODEL,
            '--no-progress', *args]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(evaluate_cli(*args), capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


def test_offline_scores_every_frame(synthetic_bag) -> None:
    report, latencies, samples = evaluate_bag_offline(synthetic_bag, image_topic=IMAGE,
                                                      gt_topic=GT, model=MODEL, progress=False)
    assert report['accounting'] == {'frames_in': 4, 'frames_processed': 4, 'frames_dropped': 0,
                                    'dropped_by_reason': {}}
    seg = report['segmentation']
    assert seg['frames'] == 4 and 0.0 <= seg['miou'] <= 1.0
    conf = np.asarray(seg['confusion_matrix'])
    assert conf.sum() == 4 * 160 * 128  # every pixel of every frame counted once
    assert len(latencies) == 4 and len(samples) == 4 and not report['partial']


def test_a_stop_request_between_frames_balances_the_books(synthetic_bag) -> None:
    polls = []

    def stop_after_two() -> bool:  # polled once before each frame
        polls.append(1)
        return len(polls) > 2

    report, latencies, _ = evaluate_bag_offline(synthetic_bag, image_topic=IMAGE, gt_topic=GT,
                                                model=MODEL, progress=False,
                                                should_stop=stop_after_two)
    assert report['partial'] and len(latencies) == 2
    assert report['accounting'] == {'frames_in': 4, 'frames_processed': 2, 'frames_dropped': 2,
                                    'dropped_by_reason': {'interrupted': 2}}


def test_ground_truth_at_another_resolution_is_scaled_nearest_with_a_warning(tmp_path) -> None:
    store = default_typestore()
    rng = np.random.default_rng(0)
    path = tmp_path / 'halfgt'
    with BagWriter(path, typestore=store) as writer:
        for i in range(2):
            stamp = 1_000_000_000 * (i + 1)
            writer.write(IMAGE, stamp, image_message(
                store, rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), 'rgb8', stamp, ''))
            writer.write(GT, stamp, image_message(
                store, np.full((32, 48), 1, np.uint8), 'mono8', stamp, ''))
    report, _, _ = evaluate_bag_offline(path, image_topic=IMAGE, gt_topic=GT, model=MODEL,
                                        progress=False)
    assert any('scaled with nearest' in w for w in report['warnings'])
    conf = np.asarray(report['segmentation']['confusion_matrix'])
    assert conf.sum() == 2 * 64 * 96 and conf[1].sum() == conf.sum()  # all GT pixels 'tote'


def test_missing_bag_and_missing_topic_raise_clear_errors(tmp_path, synthetic_bag) -> None:
    with pytest.raises(EvaluationInputError, match='does not exist'):
        evaluate_bag_offline(tmp_path / 'nope', image_topic=IMAGE, gt_topic=None, model=MODEL)
    with pytest.raises(EvaluationInputError, match=r'/nope/image not in bag.*available'):
        evaluate_bag_offline(synthetic_bag, image_topic='/nope/image', gt_topic=None,
                             model=MODEL)


@pytest.mark.parametrize('case', ['missing_bag', 'missing_topic', 'corrupt_bag'])
def test_cli_bad_input_is_one_line_and_non_zero(case, tmp_path, synthetic_bag) -> None:
    bag, topic = synthetic_bag, IMAGE
    if case == 'missing_bag':
        bag = tmp_path / 'absent'
    elif case == 'missing_topic':
        topic = '/camera/nothing'
    else:
        bag = tmp_path / 'corrupt'
        bag.mkdir()
        (bag / 'metadata.yaml').write_text('not: [a, bag')
    result = run_cli('--mode', 'bag', '--bag', str(bag), '--image-topic', topic, '--out',
                     str(tmp_path / 'out'))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('seg_perception evaluate: error:'), \
        result.stderr
    assert str(bag) in lines[0] or topic in lines[0]


def test_ctrl_c_leaves_a_readable_partial_report(tmp_path) -> None:
    bag = tmp_path / 'long'
    frames = 300  # long enough that Ctrl-C lands mid-run even on an idle machine
    write_synthetic_bag(bag, frames=frames, seed=100_000, rate_hz=5.0, width=96, height=64,
                        progress=False)
    out = tmp_path / 'out'
    command = [c for c in evaluate_cli('--mode', 'bag', '--bag', str(bag), '--gt-topic', GT,
                                       '--out', str(out)) if c != '--no-progress']
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps
    # an inherited SIG_IGN: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO_ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    progress = bytearray()
    reader = threading.Thread(target=lambda: [progress.extend(chunk) for chunk in
                                              iter(lambda: proc.stderr.read1(256), b'')],
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 60.0
    while not re.search(rb' [1-9]\d*/%d ' % frames, progress) \
            and time.monotonic() < deadline:  # tqdm: some frames done
        assert proc.poll() is None, bytes(progress).decode(errors='replace')
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # as Ctrl-C would
    stdout = proc.stdout.read().decode()
    proc.wait(timeout=60)
    reader.join(timeout=5)
    assert proc.returncode == 130, bytes(progress).decode(errors='replace')[-2000:]
    doc = json.loads((out / 'report.json').read_text())
    acc = doc['accounting']
    assert doc['partial'] is True and 'PARTIAL' in stdout
    assert acc['frames_in'] == frames == acc['frames_processed'] + acc['frames_dropped']
    assert acc['dropped_by_reason'].get('interrupted', 0) == acc['frames_dropped'] > 0
    assert 'Partial report' in (out / 'report.md').read_text()


@pytest.mark.ros
def test_online_run_through_the_segmentation_node(tmp_path, synthetic_bag) -> None:
    report, latencies, _ = evaluate_bag_online(
        synthetic_bag, image_topic=IMAGE, gt_topic=GT, out_dir=tmp_path, model=MODEL,
        drain_s=2.0, progress=False)
    acc = report['accounting']
    assert acc['frames_in'] == 4 == acc['frames_processed'] + acc['frames_dropped']
    assert acc['frames_processed'] >= 1
    assert report['segmentation']['frames'] == acc['frames_processed']
    assert report['latency']['count'] == len(latencies) == acc['frames_processed']
    assert all(v > 0 for v in latencies)
    with BagReader(tmp_path / 'recorded') as recorded:  # the recorded bag is finalised
        assert recorded.topics['/camera/color/segmentation/labels'].message_count == \
            acc['frames_processed']
    assert (tmp_path / 'logs' / 'segmentation_node.log').is_file()


@pytest.mark.ros
def test_realsense_bag_replay_produces_labels(tmp_path) -> None:
    if not REALSENSE.is_dir():
        pytest.skip(f'shared data {REALSENSE} is absent')
    report, latencies, _ = evaluate_bag_online(
        REALSENSE, image_topic=REALSENSE_COLOR, gt_topic=None, out_dir=tmp_path, model=MODEL,
        drain_s=2.0, progress=False)
    assert report['accounting']['frames_in'] == 1
    assert report['accounting']['frames_processed'] == 1, report['accounting']
    assert report['segmentation'] is None and len(latencies) == 1
    with BagReader(tmp_path / 'recorded') as recorded:
        labels = recorded.topics[f'{REALSENSE_COLOR}/segmentation/labels']
        assert labels.message_count == 1
        message = next(recorded.messages(topics=[labels.name]))
        msg = recorded.deserialize(message)
        assert (msg.height, msg.width, msg.encoding) == (480, 640, 'mono8')
        assert (msg.header.stamp.sec, msg.header.frame_id) == (360, '0')  # stamps kept as is
