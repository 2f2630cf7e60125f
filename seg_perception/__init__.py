"""seg_perception: semantic segmentation and grasp assistance for logistics cells, for ROS 2.

The subpackages are ROS-free except :mod:`seg_perception.nodes`, which holds the rclpy adapters.
"""

__version__ = '0.1.0'
