"""Tests of the model registry: every architecture builds and returns logits at the input size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seg_perception.segmentation.registry import ARCHITECTURES, build_model, ModelBuildError

LIGHT = ('unet_small', 'segnet', 'deeplabv3plus_mobilenet', 'unet_mobilenetv2',
         'deeplabv3_mobilenet_v3_large', 'lraspp_mobilenet_v3_large')
HEAVY = ('fcn_resnet50', 'deeplabv3_resnet50', 'fcn_resnet101', 'deeplabv3_resnet101')


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def test_architectures_cover_the_documented_names():
    assert set(ARCHITECTURES) == set(LIGHT) | set(HEAVY)


@pytest.mark.parametrize('arch', LIGHT)
def test_output_is_a_logit_map_at_the_input_size(arch):
    model = build_model(arch, num_classes=6).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 50, 70))
    assert set(out) == {'out'}
    assert out['out'].shape == (1, 6, 50, 70)
    assert torch.isfinite(out['out']).all()


@pytest.mark.parametrize('arch', HEAVY)
def test_heavy_models_build_with_the_requested_classes(arch):
    model = build_model(arch, num_classes=6)
    assert model.classifier[-1].out_channels == 6
    assert getattr(model, 'aux_classifier', None) is None


def test_unet_small_accepts_its_keyword_arguments_and_odd_sizes():
    model = build_model('unet_small', num_classes=3, base_width=8, levels=5).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 37, 53))['out']
    assert out.shape == (2, 3, 37, 53)


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ModelBuildError, match='unet_small'):
        build_model('resnet9000', num_classes=6)


@pytest.mark.parametrize('num_classes', [0, -1, 2.5, True])
def test_bad_num_classes_is_rejected(num_classes):
    with pytest.raises(ModelBuildError, match='num_classes'):
        build_model('unet_small', num_classes=num_classes)


def test_bad_constructor_argument_is_reported():
    with pytest.raises(ModelBuildError, match='unet_small'):
        build_model('unet_small', num_classes=6, no_such_option=1)


def test_unet_has_no_pretrained_weights():
    with pytest.raises(ModelBuildError, match='no pretrained'):
        build_model('unet_small', num_classes=6, weights='DEFAULT')


def test_weights_path_round_trip(tmp_path: Path):
    model = build_model('unet_small', num_classes=4, base_width=8)
    path = tmp_path / 'w.pt'
    torch.save(model.state_dict(), path)
    again = build_model('unet_small', num_classes=4, base_width=8, weights=path)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_weights_that_do_not_fit_are_reported(tmp_path: Path):
    path = tmp_path / 'w.pt'
    torch.save(build_model('unet_small', num_classes=4, base_width=8).state_dict(), path)
    with pytest.raises(ModelBuildError, match='do not fit'):
        build_model('unet_small', num_classes=6, base_width=8, weights=path)
    with pytest.raises(ModelBuildError, match='does not exist'):
        build_model('unet_small', num_classes=6, weights=tmp_path / 'missing.pt')
