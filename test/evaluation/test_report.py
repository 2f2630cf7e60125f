"""Report writing from synthetic numbers: files, JSON keys, accounting, Markdown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seg_perception.evaluation.accounting import AccountingError, FrameAccounting, \
    latency_summary, throughput_fps
from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.evaluation.report import ReportError, write_report

NAMES = ['background', 'tote', 'box', 'polybag', 'envelope', 'cylinder']


def _scores() -> dict:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 6, (2, 24, 32), dtype=np.uint8)
    pred = gt.copy()
    pred[:, :4] = 2  # some wrong rows
    scores = SegmentationScores(num_classes=6, class_names=NAMES)
    scores.update(gt, pred)
    return scores.summary()


def _accounting() -> FrameAccounting:
    acc = FrameAccounting()
    for i in range(7):
        acc.add_processed(i)
    acc.add_dropped(7, 'superseded')
    acc.add_dropped(8, 'superseded')
    acc.add_dropped(9, 'in_flight_at_stop')
    return acc


def test_accounting_in_equals_processed_plus_dropped() -> None:
    summary = _accounting().summary()
    assert summary == {'frames_in': 10, 'frames_processed': 7, 'frames_dropped': 3,
                       'dropped_by_reason': {'in_flight_at_stop': 1, 'superseded': 2}}


def test_accounting_refuses_a_frame_twice_and_a_drop_without_reason() -> None:
    acc = _accounting()
    with pytest.raises(AccountingError, match='twice'):
        acc.add_processed(3)
    with pytest.raises(AccountingError, match='reason'):
        acc.add_dropped(42, '')


def test_latency_summary_percentiles_and_empty() -> None:
    lat = latency_summary(range(1, 101))
    assert (lat['count'], lat['p50_ms'], lat['max_ms']) == (100, 50.5, 100.0)
    assert lat['p95_ms'] == pytest.approx(95.05) and lat['p99_ms'] == pytest.approx(99.01)
    assert latency_summary([])['p50_ms'] is None
    assert throughput_fps([0, 500_000_000, 1_000_000_000]) == 2.0
    assert throughput_fps([5]) is None


def test_write_report_files_json_keys_and_markdown(tmp_path) -> None:
    seg = _scores()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 6, (24, 32), dtype=np.uint8)
    latencies = list(rng.uniform(10, 50, 40))
    report = {'title': 'synthetic numbers', 'accounting': _accounting().summary(),
              'segmentation': seg, 'latency': latency_summary(latencies),
              'throughput_fps': 9.5, 'partial': False, 'notes': ['a note']}
    files = write_report(tmp_path, report, latencies_ms=latencies,
                         samples=[('a', rgb, labels, labels), ('b', rgb, None, labels)])
    for name in ('report.json', 'report.md', 'confusion_matrix.png', 'per_class_iou.png',
                 'latency_histogram.png', 'samples.png'):
        assert (tmp_path / name).stat().st_size > 0, name
        if name.endswith('.png'):
            assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert set(files) == {'confusion', 'iou', 'latency', 'samples', 'json', 'markdown'}
    doc = json.loads((tmp_path / 'report.json').read_text())
    for key in ('accounting', 'segmentation', 'latency', 'throughput_fps', 'files'):
        assert key in doc
    acc = doc['accounting']
    assert acc['frames_in'] == acc['frames_processed'] + acc['frames_dropped'] == 10
    assert doc['segmentation']['miou'] == pytest.approx(seg['miou'])
    assert set(doc['segmentation']['per_class_iou']) == set(NAMES)
    assert np.asarray(doc['segmentation']['confusion_matrix']).shape == (6, 6)
    markdown = (tmp_path / 'report.md').read_text()
    for png in ('confusion_matrix.png', 'per_class_iou.png', 'latency_histogram.png',
                'samples.png'):
        assert f']({png})' in markdown
    assert f'{seg["miou"]:.4f}' in markdown and 'superseded | 2' in markdown
    assert 'Partial report' not in markdown


def test_report_without_ground_truth_or_latency_and_partial_flag(tmp_path) -> None:
    acc = FrameAccounting()
    acc.add_dropped(0, 'interrupted')
    write_report(tmp_path, {'title': 't', 'accounting': acc.summary(), 'partial': True,
                            'latency': latency_summary([]), 'throughput_fps': float('nan')})
    doc = json.loads((tmp_path / 'report.json').read_text())
    assert doc['throughput_fps'] is None and doc['partial'] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ['report.json', 'report.md']
    text = (tmp_path / 'report.md').read_text()
    assert 'Partial report' in text and 'No ground truth' in text


def test_report_refuses_inconsistent_accounting(tmp_path) -> None:
    bad = {'frames_in': 5, 'frames_processed': 3, 'frames_dropped': 1, 'dropped_by_reason': {}}
    with pytest.raises(AccountingError, match='frames in 5'):
        write_report(tmp_path, {'accounting': bad})
    with pytest.raises(ReportError, match='accounting'):
        write_report(tmp_path, {'title': 'no accounting'})
