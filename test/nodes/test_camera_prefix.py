"""Output namespaces derived from image topics."""

from __future__ import annotations

import pytest

from seg_perception.segmentation.node_settings import camera_prefix


@pytest.mark.parametrize('topic, expected', [
    ('camera/color/image_raw', ('camera/color', False)),
    ('/cam1/image_raw/compressed', ('/cam1', True)),
    ('image_raw', ('', False)),
    ('/image_raw', ('', False)),
    ('front/image_rect_color', ('front', False)),
])
def test_camera_prefix(topic, expected) -> None:
    assert camera_prefix(topic) == expected
