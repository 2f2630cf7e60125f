"""Tests of structured channel pruning of the U-Net."""

from __future__ import annotations

import pytest
import torch

from seg_perception.classes import ClassSet
from seg_perception.cli import main as cli_main
from seg_perception.segmentation.loader import load_segmenter
from seg_perception.segmentation.model_spec import ModelSpec, save_checkpoint
from seg_perception.segmentation.pruning import prune_unet, pruned_widths, PruningError
from seg_perception.segmentation.registry import build_model
from seg_perception.segmentation.unet import UNetSmall

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _trained_like(seed: int = 0) -> UNetSmall:
    """Return a small U-Net with random BatchNorm statistics (as after training)."""
    torch.manual_seed(seed)
    model = UNetSmall(num_classes=6, base_width=8, levels=4)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(-1, 1)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_keeping_every_channel_is_the_same_network():
    model = _trained_like()
    same = prune_unet(model, keep=1.0)
    x = torch.randn(2, 3, 48, 64)
    with torch.inference_mode():
        assert torch.equal(model(x)['out'], same(x)['out'])


def test_pruned_channels_are_the_least_important_ones():
    """Zeroing the BN scale of half the channels makes them exactly prunable."""
    model = _trained_like(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data[::2] = 0.0  # these channels output relu(beta) only ...
            m.bias.data[::2] = 0.0    # ... which is 0: they carry nothing
    pruned = prune_unet(model, keep=0.5)
    assert pruned.widths == (4, 8, 16, 32)
    x = torch.randn(1, 3, 48, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x)['out'], pruned(x)['out'], atol=1e-5, rtol=1e-5)


def test_widths_and_refusals():
    assert pruned_widths((24, 48, 96), 0.75) == [18, 36, 72]
    assert pruned_widths((8, 16), 0.1) == [4, 4]
    with pytest.raises(PruningError, match='keep'):
        pruned_widths((8, 16), 0.0)
    with pytest.raises(PruningError, match='separable'):
        prune_unet(UNetSmall(num_classes=3, base_width=8, levels=3, separable=True), keep=0.5)
    with pytest.raises(PruningError, match='unet_small'):
        prune_unet(build_model('segnet', num_classes=3), keep=0.5)


def test_the_cli_writes_a_checkpoint_the_loader_reads(tmp_path):
    # a U-Net of the default model's shape, made here: the test does not depend on what is shipped
    source = tmp_path / 'unet.pt'
    save_checkpoint(source, UNetSmall(num_classes=6, base_width=24, levels=5),
                    ModelSpec(arch='unet_small', class_set=ClassSet.default(),
                              input_size=(240, 320), arch_kwargs={'base_width': 24, 'levels': 5}))
    out = tmp_path / 'pruned.pt'
    assert cli_main(['prune', str(source), '--keep', '0.5', '--out', str(out)]) == 0
    segmenter, spec = load_segmenter(str(out), device='cpu')
    assert spec.arch == 'unet_small' and spec.arch_kwargs['widths'] == [12, 24, 48, 96, 192]
    assert segmenter(torch.zeros(1, 3, 64, 80)).shape == (1, 6, 64, 80)
