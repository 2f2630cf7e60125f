"""Tests of ModelSpec, checkpoints with JSON sidecars and the shipped-model path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seg_perception.classes import ClassInfo, ClassSet
from seg_perception.segmentation.model_spec import (
    default_model_path,
    load_checkpoint,
    ModelLoadError,
    ModelSpec,
    ModelSpecError,
    save_checkpoint,
)


def _spec(**changes) -> ModelSpec:
    values = {'arch': 'unet_small', 'class_set': ClassSet.default(), 'input_size': (48, 64),
              'mean': (0.5, 0.4, 0.3), 'std': (0.2, 0.25, 0.3), 'model_name': 'tiny',
              'arch_kwargs': {'base_width': 8, 'levels': 3}}
    values.update(changes)
    return ModelSpec(**values)


def test_spec_round_trips_through_json():
    spec = _spec(input_layout='NHWC')
    doc = json.loads(json.dumps(spec.to_dict()))
    assert doc['format_version'] == 1
    assert doc['class_set'][2]['name'] == 'box'
    again = ModelSpec.from_dict(doc)
    assert again == spec
    assert again.input_size == (48, 64) and again.num_classes == 6


def test_spec_num_classes_follows_the_largest_id():
    classes = ClassSet([ClassInfo(0, 'background', (0, 0, 0)), ClassInfo(7, 'thing', (1, 2, 3))])
    assert _spec(class_set=classes).num_classes == 8


@pytest.mark.parametrize('changes, word', [
    ({'input_size': (4, 64)}, 'input_size'),
    ({'input_size': 'big'}, 'input_size'),
    ({'std': (0.2, 0.0, 0.3)}, 'std'),
    ({'mean': (0.1, 0.2)}, 'mean'),
    ({'input_layout': 'CHW'}, 'input_layout'),
    ({'arch': ''}, 'arch'),
    ({'class_set': ['background']}, 'class_set'),
])
def test_spec_rejects_bad_values(changes, word):
    with pytest.raises(ModelSpecError, match=word):
        _spec(**changes)


def test_from_dict_rejects_newer_formats_and_missing_keys():
    doc = _spec().to_dict()
    with pytest.raises(ModelSpecError, match='format_version'):
        ModelSpec.from_dict({**doc, 'format_version': 99})
    del doc['arch']
    with pytest.raises(ModelSpecError, match='arch'):
        ModelSpec.from_dict(doc)


def test_save_and_load_checkpoint(tmp_path: Path):
    spec = _spec()
    model = spec.build()
    with torch.no_grad():  # make the weights differ from a fresh init
        for p in model.parameters():
            p.add_(0.01)
    path = save_checkpoint(tmp_path / 'run' / 'model.pt', model, spec,
                           extra={'command': 'seg_perception train ...', 'miou': 0.5})
    assert path.is_file() and (tmp_path / 'run' / 'model.json').is_file()
    side = json.loads((tmp_path / 'run' / 'model.json').read_text())
    assert side['extra']['command'] == 'seg_perception train ...'
    assert side['weights_file'] == 'model.pt' and 'saved_utc' in side
    assert isinstance(torch.load(path, weights_only=True), dict)  # a plain state_dict
    loaded, loaded_spec = load_checkpoint(path)
    assert loaded_spec == spec
    assert not loaded.training
    x = torch.randn(1, 3, 48, 64)
    model.eval()
    with torch.inference_mode():
        assert torch.allclose(model(x)['out'], loaded(x)['out'], atol=1e-6)


def test_missing_weights_file(tmp_path: Path):
    with pytest.raises(ModelLoadError, match='does not exist'):
        load_checkpoint(tmp_path / 'nothing.pt')


def test_missing_sidecar(tmp_path: Path):
    path = save_checkpoint(tmp_path / 'm.pt', _spec().build(), _spec())
    (tmp_path / 'm.json').unlink()
    with pytest.raises(ModelLoadError, match='sidecar .* is missing'):
        load_checkpoint(path)


def test_corrupt_sidecar(tmp_path: Path):
    path = save_checkpoint(tmp_path / 'm.pt', _spec().build(), _spec())
    (tmp_path / 'm.json').write_text('{"arch": "unet_small", ')
    with pytest.raises(ModelLoadError, match='not valid JSON'):
        load_checkpoint(path)
    (tmp_path / 'm.json').write_text('{"arch": "unet_small"}')
    with pytest.raises(ModelLoadError, match='class_set'):
        load_checkpoint(path)


def test_corrupt_weights(tmp_path: Path):
    path = save_checkpoint(tmp_path / 'm.pt', _spec().build(), _spec())
    path.write_bytes(b'not a torch file')
    with pytest.raises(ModelLoadError, match='corrupt'):
        load_checkpoint(path)


def test_weights_of_another_architecture(tmp_path: Path):
    path = save_checkpoint(tmp_path / 'm.pt', _spec().build(), _spec())
    doc = json.loads((tmp_path / 'm.json').read_text())
    doc['arch_kwargs'] = {'base_width': 8, 'levels': 4}
    (tmp_path / 'm.json').write_text(json.dumps(doc))
    with pytest.raises(ModelLoadError, match='unexpected keys|missing keys'):
        load_checkpoint(path)


def test_default_model_path_points_into_the_package():
    path = default_model_path()
    assert path.name == 'default.pt'
    assert path.parent.name == 'models' and path.parent.parent.name == 'resources'
