"""Tests of load_segmenter: every source kind, and clear errors for bad ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seg_perception.classes import ClassSet
from seg_perception.segmentation.loader import load_segmenter, ModelLoadError
from seg_perception.segmentation.model_spec import save_checkpoint
from seg_perception.segmentation.registry import build_model
from seg_perception.segmentation.torchscript_backend import export_torchscript

from segmentation.seg_fixtures import tiny_unet_spec  # noqa: I100 (test helper)

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
torch.set_num_threads(2)


@pytest.fixture
def checkpoint(tmp_path):
    spec = tiny_unet_spec()
    torch.manual_seed(0)
    model = build_model(spec.arch, num_classes=spec.num_classes, **spec.arch_kwargs).eval()
    return save_checkpoint(tmp_path / 'tiny.pt', model, spec), spec


def test_missing_file_names_the_path(tmp_path):
    for name in ('nope.pt', 'nope.onnx', 'nope.ts'):
        with pytest.raises(ModelLoadError, match='nope'):
            load_segmenter(str(tmp_path / name), device='cpu')


def test_unknown_name_lists_known_names():
    with pytest.raises(ModelLoadError) as info:
        load_segmenter('resnet9000', device='cpu')
    message = str(info.value)
    for name in ('resnet9000', 'unet_small', 'maskrcnn_resnet50_fpn', 'default'):
        assert name in message


def test_corrupt_files_raise_model_load_error(tmp_path, checkpoint):
    path_pt, spec = checkpoint
    path_pt.write_bytes(b'not a zip file')
    with pytest.raises(ModelLoadError, match='corrupt'):
        load_segmenter(str(path_pt), device='cpu')
    sidecar = json.dumps(spec.to_dict())
    for name in ('bad.ts', 'bad.onnx'):
        bad = tmp_path / name
        bad.write_bytes(b'\x00garbage')
        bad.with_suffix('.json').write_text(sidecar, encoding='utf-8')
        with pytest.raises(ModelLoadError, match='bad'):
            load_segmenter(str(bad), device='cpu')
    broken = tmp_path / 'broken.ts'
    broken.write_bytes(b'x')
    broken.with_suffix('.json').write_text('{not json', encoding='utf-8')
    with pytest.raises(ModelLoadError, match='sidecar'):
        load_segmenter(str(broken), device='cpu')


def test_torchscript_needs_a_sidecar(tmp_path):
    path = tmp_path / 'lonely.ts'
    path.write_bytes(b'x')
    with pytest.raises(ModelLoadError, match='lonely.json'):
        load_segmenter(str(path), device='cpu')


def test_registry_name_uses_default_classes():
    segmenter, spec = load_segmenter('unet_small', device='cpu')
    assert spec.class_set == ClassSet.default()
    with torch.inference_mode():
        out = segmenter(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, spec.class_set.num_outputs, 32, 32)


def test_registry_name_with_sidecar_uses_its_classes_and_kwargs(tmp_path):
    spec = tiny_unet_spec()
    side = tmp_path / 'spec.json'
    side.write_text(json.dumps(spec.to_dict()), encoding='utf-8')
    _, loaded = load_segmenter('unet_small', device='cpu', spec_path=side)
    assert loaded.arch_kwargs == {'base_width': 4, 'levels': 2}
    assert loaded.input_size == (32, 48)


def test_torchscript_round_trip_gives_identical_labels(tmp_path, checkpoint):
    path_pt, spec = checkpoint
    eager, eager_spec = load_segmenter(str(path_pt), device='cpu')
    assert eager_spec == spec
    x = torch.randn(2, 3, *spec.input_size, generator=torch.Generator().manual_seed(1))
    ts_path = export_torchscript(eager.module, tmp_path / 'tiny.ts', example=x)
    (tmp_path / 'tiny.json').write_text(json.dumps(spec.to_dict()), encoding='utf-8')
    scripted, ts_spec = load_segmenter(str(ts_path), device='cpu')
    assert ts_spec.class_set == spec.class_set
    with torch.inference_mode():
        a, b = eager(x), scripted(x)
    torch.testing.assert_close(a, b)
    np.testing.assert_array_equal(a.argmax(1).numpy(), b.argmax(1).numpy())
