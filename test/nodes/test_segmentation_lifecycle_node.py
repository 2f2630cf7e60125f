"""segmentation_lifecycle_node in its own process, driven through real lifecycle services."""

from __future__ import annotations

import time

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_harness import NodeProcess, wait_until
from seg_perception.conversions import numpy_to_image

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.segmentation_lifecycle_node'
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
PARAMS = {'image_topics': ['life/image_raw'], 'model': 'unet_small', 'device': 'cpu',
          'qos_reliability': 'reliable', 'warmup_iterations': 1, 'input_size': [96, 128]}


class Lifecycle:
    """Clients for the node's lifecycle and parameter services."""

    def __init__(self, probe) -> None:
        node = probe.node
        self.change = node.create_client(ChangeState, '/segmentation_node/change_state')
        self.get = node.create_client(GetState, '/segmentation_node/get_state')
        self.params = node.create_client(SetParameters, '/segmentation_node/set_parameters')
        for client in (self.change, self.get, self.params):
            assert client.wait_for_service(timeout_sec=60.0), client.srv_name

    @staticmethod
    def _call(client, request, timeout_s: float = 60.0):
        future = client.call_async(request)
        assert wait_until(future.done, timeout_s), f'{client.srv_name}: no answer'
        return future.result()

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self._call(self.change, request).success

    def state(self) -> int:
        return self._call(self.get, GetState.Request()).current_state.id

    def set_string(self, name: str, value: str) -> bool:
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=value))])
        return self._call(self.params, request).results[0].successful


def test_transitions_load_start_stop_and_release(ros_probe) -> None:
    labels = ros_probe.subscribe(Image, 'life/segmentation/labels', RELIABLE)
    with NodeProcess(NODE, params=PARAMS) as proc:
        life = Lifecycle(ros_probe)
        assert life.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert ros_probe.node.count_publishers('/life/segmentation/labels') == 0

        # A missing model fails configure with the reason; the node stays up, unconfigured.
        assert life.set_string('model', '/nonexistent/weights.pt')
        assert not life.transition(Transition.TRANSITION_CONFIGURE)
        assert life.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert wait_until(lambda: 'weights.pt' in proc.output, 10.0)
        assert 'configure failed' in proc.output and proc.is_running()

        # Fixed, it configures: topics exist, but frames are not segmented while inactive.
        assert life.set_string('model', 'unet_small')
        assert life.transition(Transition.TRANSITION_CONFIGURE)
        assert life.state() == State.PRIMARY_STATE_INACTIVE
        pub = ros_probe.node.create_publisher(Image, 'life/image_raw', RELIABLE)
        ros_probe.wait_for_subscribers(pub, timeout_s=30.0)
        ros_probe.wait_for_publishers('life/segmentation/labels', timeout_s=30.0)
        frame = numpy_to_image(np.zeros((96, 128, 3), np.uint8), 'rgb8')

        def send(sec: int) -> None:
            frame.header.stamp.sec = sec
            pub.publish(frame)

        send(1)
        time.sleep(1.5)
        assert len(labels) == 0

        assert life.transition(Transition.TRANSITION_ACTIVATE)
        assert life.state() == State.PRIMARY_STATE_ACTIVE
        for i, sec in enumerate((10, 11, 12)):
            send(sec)
            labels.wait_for(i + 1, timeout_s=30.0)
        assert [m.header.stamp.sec for m in labels.messages] == [10, 11, 12]

        assert life.transition(Transition.TRANSITION_DEACTIVATE)
        send(20)
        time.sleep(1.5)
        assert [m.header.stamp.sec for m in labels.messages] == [10, 11, 12]

        # Parameters that need a reload are refused while configured, accepted after cleanup.
        assert not life.set_string('model', 'default')
        assert life.transition(Transition.TRANSITION_CLEANUP)
        assert life.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert wait_until(
            lambda: ros_probe.node.count_publishers('/life/segmentation/labels') == 0, 10.0)
        assert life.set_string('model', 'unet_small')
        assert proc.is_running() and 'Traceback' not in proc.output
