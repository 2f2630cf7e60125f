"""Tests of the CRF and guided-filter refinement: shapes, stability, boundaries follow colour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg_perception.segmentation.refine import (
    check_mode,
    crf_kernel,
    crf_refine,
    CRFConfig,
    GuidedConfig,
    refine_logits,
    RefineConfigError,
)

pytestmark = pytest.mark.usefixtures('one_torch_thread')

EDGE = 30  # the colour edge of the two-colour frame, in columns


def _two_colour_frame(h: int = 40, w: int = 64) -> torch.Tensor:
    frame = torch.empty((h, w, 3), dtype=torch.uint8)
    frame[:, :EDGE] = torch.tensor([190, 60, 40], dtype=torch.uint8)
    frame[:, EDGE:] = torch.tensor([40, 70, 180], dtype=torch.uint8)
    return frame


def _shifted_logits(h: int = 40, w: int = 64, boundary: float = 25.5) -> torch.Tensor:
    """Two-class logits whose decision boundary sits 4.5 px left of the colour edge, soft."""
    x = torch.arange(w, dtype=torch.float32).expand(h, w)
    margin = 0.6 * (x - boundary)  # class 1 wins right of `boundary`, uncertain near it
    return torch.stack([-margin / 2, margin / 2])


@pytest.mark.parametrize('mode', ['crf', 'guided'])
def test_refinement_keeps_shape_and_gives_float_logits(mode):
    logits = torch.randn(5, 24, 32).to(torch.bfloat16)
    frame = torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8)  # frame twice the net size
    out = refine_logits(logits, frame, mode)
    assert out.shape == (5, 24, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_none_returns_the_logits_untouched():
    logits = torch.randn(3, 8, 8)
    assert refine_logits(logits, torch.zeros((8, 8, 3), dtype=torch.uint8), 'none') is logits


@pytest.mark.parametrize('mode', ['crf', 'guided'])
def test_confident_uniform_input_stays_as_it_is(mode):
    logits = torch.full((4, 20, 30), -5.0)
    logits[2] = 5.0
    frame = torch.full((20, 30, 3), 120, dtype=torch.uint8)
    out = refine_logits(logits, frame, mode)
    assert bool((out.argmax(dim=0) == 2).all())
    before, after = torch.softmax(logits, 0), torch.softmax(out, 0)
    assert float((after - before).abs().max()) < 1e-3


@pytest.mark.parametrize('mode', ['crf', 'guided'])
def test_a_shifted_boundary_moves_to_the_colour_edge(mode):
    frame = _two_colour_frame()
    logits = _shifted_logits()
    truth = (torch.arange(64) >= EDGE).expand(40, 64)
    wrong_before = int((logits.argmax(0).bool() != truth).sum())
    assert wrong_before == 4 * 40  # columns 26..29 are on the wrong side
    refined = refine_logits(logits, frame, mode)
    wrong_after = int((refined.argmax(0).bool() != truth).sum())
    assert wrong_after <= wrong_before // 4, (wrong_before, wrong_after)


def test_crf_message_equals_a_dense_window_sum():
    torch.manual_seed(0)
    config = CRFConfig(iterations=1, window=5, theta_alpha=3.0, theta_beta=30.0,
                       theta_gamma=1.5, w_bilateral=0.7, w_spatial=0.4)
    logits = torch.randn(1, 3, 9, 11)
    image = torch.rand(1, 3, 9, 11) * 255
    got = crf_refine(logits, image, config)
    # independent reference: every window neighbour, unfolded, weights from the definition
    k, r = 5, 2
    h, w = 9, 11
    q = F.unfold(torch.softmax(logits, 1), k, padding=r).view(1, 3, k * k, h, w)
    colours = F.unfold(image, k, padding=r).view(1, 3, k * k, h, w)
    inside = F.unfold(torch.ones(1, 1, h, w), k, padding=r).view(1, 1, k * k, h, w)
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing='ij')
    d2 = (dy ** 2 + dx ** 2).reshape(1, 1, k * k, 1, 1)
    c2 = (colours - image.unsqueeze(2)).square().sum(1, keepdim=True)
    weight = (0.7 * torch.exp(-d2 / 18.0 - c2 / 1800.0) + 0.4 * torch.exp(-d2 / 4.5)) * inside
    weight[:, :, k * k // 2] = 0  # no message from a pixel to itself
    expected = logits + (q * weight).sum(2)
    assert torch.allclose(got, expected, atol=1e-5)
    assert crf_kernel(image, config).shape == (1, 12, 13, 15)


@pytest.mark.parametrize('make, match', [
    (lambda: CRFConfig(window=4), 'window'), (lambda: CRFConfig(iterations=0), 'iterations'),
    (lambda: CRFConfig(theta_beta=0), 'theta_beta'), (lambda: CRFConfig(w_spatial=-1), 'w_sp'),
    (lambda: GuidedConfig(radius=0), 'radius'), (lambda: GuidedConfig(eps=0), 'eps'),
    (lambda: check_mode('dense'), 'refine')])
def test_bad_parameters_are_named(make, match):
    with pytest.raises(RefineConfigError, match=match):
        make()


def test_running_sum_box_filter_equals_a_window_mean():
    from seg_perception.segmentation.refine import _box
    x = torch.rand(2, 3, 13, 17)
    expected = F.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
    assert torch.allclose(_box(x, 3), expected, atol=1e-5)
