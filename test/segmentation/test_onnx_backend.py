"""Tests of the ONNX backend on the real DeepLabV3 MobileNetV2 VOC model (skipped without it)."""

from __future__ import annotations

import json
from pathlib import Path
import shutil

import numpy as np
import pytest
import torch

from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
from seg_perception.segmentation.loader import load_segmenter, ModelLoadError

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[2]
SIDECAR = REPO / 'config' / 'models' / 'deeplabv3_mnv2_voc.json'
ONNX_MODEL = REPO / '..' / 'shared' / 'data' / 'models' / 'deeplabv3_mnv2_voc' / \
    'deeplab_v3_1_default_1.onnx'


@pytest.fixture(scope='module')
def onnx_model() -> Path:
    if not ONNX_MODEL.is_file():
        pytest.skip(f'shared ONNX model {ONNX_MODEL} is absent')
    pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
    return ONNX_MODEL


@pytest.fixture(scope='module')
def voc_engine(onnx_model):
    return SegmentationEngine(EngineConfig(model=str(onnx_model), spec_path=str(SIDECAR),
                                           device='cpu', warmup_iterations=0))


def test_sidecar_describes_the_model(voc_engine):
    spec = voc_engine.spec
    assert spec.input_layout == 'NHWC' and spec.input_size == (257, 257)
    assert spec.class_set.num_outputs == 21
    assert spec.class_set.by_id(15).name == 'person'
    assert spec.class_set.by_id(15).color == (192, 128, 128)
    assert voc_engine.segmenter.output_layout == 'NHWC'


def test_astronaut_is_labelled_person(voc_engine):
    skdata = pytest.importorskip('skimage.data', reason='scikit-image is not installed')
    image = skdata.astronaut()  # 512x512 RGB, the astronaut fills the lower middle
    r = voc_engine.segment([image, image[:256, :384]], masks_for=[15], confidence=True)
    labels = r[0].labels
    assert labels.shape == image.shape[:2]
    person = voc_engine.class_set.by_name('person').id
    counts = np.bincount(labels.ravel(), minlength=21)
    counts[0] = 0
    assert counts.argmax() == person, f'majority non-background class is {counts.argmax()}'
    body = labels[200:500, 150:350]  # torso and helmet
    assert np.mean(body == person) > 0.5
    np.testing.assert_array_equal(r[0].masks[person] == 255, labels == person)
    assert r[1].labels.shape == (256, 384)


def test_sidecar_beside_the_model_is_found(onnx_model, tmp_path):
    local = tmp_path / 'voc.onnx'
    shutil.copyfile(onnx_model, local)
    shutil.copyfile(SIDECAR, tmp_path / 'voc.json')
    segmenter, spec = load_segmenter(str(local), device='cpu')
    out = segmenter(torch.zeros(2, 3, 257, 257))
    assert out.shape == (2, 21, 257, 257) and out.dtype == torch.float32


def test_input_shape_mismatch_is_reported(onnx_model, tmp_path):
    doc = json.loads(SIDECAR.read_text(encoding='utf-8'))
    doc['input_size'] = [320, 320]
    bad = tmp_path / 'wrong.json'
    bad.write_text(json.dumps(doc), encoding='utf-8')
    with pytest.raises(ModelLoadError, match='input_size'):
        load_segmenter(str(onnx_model), device='cpu', spec_path=bad)
    doc['input_size'] = [257, 257]
    doc['input_layout'] = 'NCHW'
    bad.write_text(json.dumps(doc), encoding='utf-8')
    with pytest.raises(ModelLoadError, match='NCHW'):
        load_segmenter(str(onnx_model), device='cpu', spec_path=bad)
