"""ROS-free rosbag2 reading and writing (the `rosbags` library), used by tools and bag nodes."""

from __future__ import annotations

from seg_perception.bag.reader import BagDamage, BagError, BagMessage, BagReader, \
    default_typestore, TopicInfo, UndecodableError
from seg_perception.bag.writer import BagWriter

__all__ = ['BagDamage', 'BagError', 'BagMessage', 'BagReader', 'BagWriter', 'TopicInfo',
           'UndecodableError', 'default_typestore']
