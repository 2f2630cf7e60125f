"""segmentation_lifecycle_node: the segmentation node as a managed (lifecycle) node.

The same parameters, topics and behaviour as `segmentation_node` (and the same node name, so
config/segmentation.yaml applies), driven by lifecycle transitions (`ros2 lifecycle set`, or a
lifecycle manager):

- configure: read and check the parameters, load the model, create subscriptions, publishers and
  diagnostics, publish LabelInfo. A bad parameter or model fails the transition with the reason
  in the log; the node stays unconfigured, and parameters can be fixed and configure retried.
- activate: start segmenting (frames that arrived while inactive are ignored, not queued).
- deactivate: stop after the frame in progress; nothing is published afterwards.
- cleanup: destroy the entities and release the model.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from seg_perception.frame_mailbox import LatestMailbox
from seg_perception.nodes.parameters import parameter_values
from seg_perception.nodes.runner import run_node
from seg_perception.nodes.segmentation_node import PARAMETERS, SegmentationWork


class SegmentationLifecycleNode(SegmentationWork, LifecycleNode):
    """Segment camera images between activate and deactivate; load the model on configure."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('segmentation_node', **kwargs)
        self._declare()
        self._active = threading.Event()
        self._destroyed = threading.Event()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and create the node's topics; FAILURE (with the reason) if invalid."""
        try:
            self._set_up(parameter_values(self, PARAMETERS))
        except Exception as exc:  # noqa: B902 - any set-up error fails the transition
            self.get_logger().error(f'configure failed: {exc}')
            self._tear_down()
            return TransitionCallbackReturn.FAILURE
        self.mailbox.close()  # opened on activate
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start taking frames; the main thread's worker picks them up."""
        self.mailbox = LatestMailbox()
        self._active.set()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking frames and wait for the frame in progress."""
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the topics and release the model."""
        self._tear_down()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release everything, from any state."""
        self._stop()
        if self.configured:
            self._tear_down()
        return TransitionCallbackReturn.SUCCESS

    def _stop(self) -> None:
        self._active.clear()
        self.mailbox.close()
        with self.processing:  # the worker finishes (and publishes) the frame it holds
            pass

    def serve(self) -> None:
        """Run the worker while active (call from the main thread); return once destroyed."""
        while not self._destroyed.is_set():
            if self._active.wait(timeout=0.5) and self.configured:
                self.run_worker()

    def destroy_node(self) -> None:
        """Stop the worker before the node goes."""
        self._destroyed.set()
        self._active.clear()
        self.mailbox.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the lifecycle node until Ctrl-C (inference in the main thread, like the plain node)."""
    return run_node(SegmentationLifecycleNode, 'segmentation_lifecycle_node', args,
                    main_thread_work=lambda node: node.serve())


if __name__ == '__main__':
    sys.exit(main())
