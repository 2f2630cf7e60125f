"""Bags can hold this project's own messages (seg_interfaces), read back intact."""

from __future__ import annotations

from rclpy.serialization import serialize_message

from seg_interfaces.msg import GraspCandidate, GraspCandidateArray
from seg_perception.bag import BagReader, BagWriter, default_typestore


def test_typestore_knows_seg_interfaces() -> None:
    names = set(default_typestore().fielddefs)
    assert {'seg_interfaces/msg/LabelInfo', 'seg_interfaces/msg/GraspCandidate',
            'seg_interfaces/msg/GraspCandidateArray'} <= names


def test_grasp_candidates_round_trip_through_a_bag(tmp_path) -> None:
    msg = GraspCandidateArray()
    msg.header.frame_id = 'cam'
    msg.candidates = [GraspCandidate(grasp_type='suction', class_name='box', score=0.5,
                                     point_count=7)]
    bag = tmp_path / 'bag'
    with BagWriter(bag) as writer:
        writer.add_topic('/grasp/candidates', 'seg_interfaces/msg/GraspCandidateArray')
        writer.write_raw('/grasp/candidates', 123, serialize_message(msg))
    with BagReader(bag) as reader:
        (record,) = list(reader.messages())
        decoded = reader.deserialize(record)
    assert decoded.header.frame_id == 'cam'
    assert decoded.candidates[0].class_name == 'box' and decoded.candidates[0].point_count == 7
