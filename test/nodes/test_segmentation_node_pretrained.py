"""A real pretrained network through the node: the VOC ONNX model finds the astronaut."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_harness import NodeProcess, REPO_ROOT
from seg_interfaces.msg import LabelInfo
from seg_perception.conversions import image_to_numpy, numpy_to_image

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def test_onnx_deeplab_labels_the_astronaut_as_person(ros_probe, shared_data) -> None:
    skimage_data = pytest.importorskip('skimage.data', reason='scikit-image is not installed')
    model = shared_data / 'models' / 'deeplabv3_mnv2_voc' / 'deeplab_v3_1_default_1.onnx'
    if not model.is_file():
        pytest.skip(f'{model} is absent')
    astronaut = skimage_data.astronaut()  # (512, 512, 3) uint8 RGB
    params = {'image_topics': ['astro/image_raw'], 'model': str(model), 'device': 'cpu',
              'model_spec': str(REPO_ROOT / 'config' / 'models' / 'deeplabv3_mnv2_voc.json'),
              'classes_to_mask': ['person'], 'qos_reliability': 'reliable',
              'upsample': 'bilinear'}
    labels = ros_probe.subscribe(Image, 'astro/segmentation/labels', RELIABLE)
    person_masks = ros_probe.subscribe(Image, 'astro/segmentation/masks/person', RELIABLE)
    with NodeProcess('seg_perception.nodes.segmentation_node', params=params) as proc:
        pub = ros_probe.node.create_publisher(Image, 'astro/image_raw', RELIABLE)
        ros_probe.wait_for_subscribers(pub, timeout_s=90.0)
        msg = numpy_to_image(astronaut, 'rgb8')
        msg.header.frame_id = 'astro'
        pub.publish(msg)
        out = labels.wait_for(1, timeout_s=60.0)[0]
        info = ros_probe.subscribe(LabelInfo, 'astro/segmentation/label_info', LATCHED)
        names = list(info.wait_for(1, timeout_s=20.0)[0].class_names)
        assert proc.is_running(), proc.output
    person = names.index('person')
    predicted = image_to_numpy(out)
    assert predicted.shape == (512, 512)
    # The astronaut's body and head: a box around her, from the picture's layout.
    region = predicted[40:512, 120:400]
    assert np.mean(region == person) > 0.6
    mask = image_to_numpy(person_masks.wait_for(1, timeout_s=10.0)[0])
    assert np.array_equal(mask == 255, predicted == person)
