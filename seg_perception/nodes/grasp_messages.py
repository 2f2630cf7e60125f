"""Grasp candidates as ROS messages: GraspCandidateArray, PoseArray and RViz markers."""

from __future__ import annotations

from typing import Sequence

from geometry_msgs.msg import Point, Pose, PoseArray
import numpy as np
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from seg_interfaces.msg import GraspCandidate as GraspCandidateMsg
from seg_interfaces.msg import GraspCandidateArray
from seg_perception.classes import ClassSet
from seg_perception.grasp import GraspCandidate
from seg_perception.grasp.container import Container

#: Length of the approach arrows drawn in RViz, metres.
ARROW_LENGTH_M = 0.08


def candidate_pose(candidate: GraspCandidate) -> Pose:
    """Return the candidate's pose (position on the surface, z = outward surface normal)."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in candidate.position)
    qx, qy, qz, qw = (float(v) for v in candidate.quaternion)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = \
        qx, qy, qz, qw
    return pose


def candidate_array(candidates: Sequence[GraspCandidate], header: Header) -> GraspCandidateArray:
    """Return the candidates, best first, as a GraspCandidateArray."""
    out = GraspCandidateArray(header=header)
    for c in candidates:
        out.candidates.append(GraspCandidateMsg(
            pose=candidate_pose(c), grasp_type=c.kind, class_id=int(c.class_id),
            class_name=c.class_name, region_id=int(c.region_id), score=float(c.score),
            area_m2=float(c.area_m2), flatness_rms_m=float(c.flatness_rms_m),
            extent_m=[float(c.extent_m[0]), float(c.extent_m[1])],
            point_count=int(c.point_count)))
    return out


def pose_array(candidates: Sequence[GraspCandidate], header: Header) -> PoseArray:
    """Return the candidate poses for RViz's PoseArray display."""
    return PoseArray(header=header, poses=[candidate_pose(c) for c in candidates])


def container_markers(container: Container | None, header: Header) -> list[Marker]:
    """Return the container's planes as closed outlines (floor green, walls cyan)."""
    if container is None:
        return []
    markers = []
    for i, plane in enumerate(container.planes):
        floor = plane is container.floor
        colour = ColorRGBA(r=0.1, g=0.9, b=0.2, a=1.0) if floor else ColorRGBA(r=0.0, g=0.8,
                                                                               b=0.9, a=1.0)
        line = Marker(header=header, ns='container', id=i, type=Marker.LINE_STRIP,
                      action=Marker.ADD, color=colour)
        outline = plane.outline_m
        line.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                       for p in np.vstack([outline, outline[:1]])]
        line.scale.x = 0.004
        line.pose.orientation.w = 1.0
        markers.append(line)
    return markers


def marker_array(candidates: Sequence[GraspCandidate], header: Header,
                 class_set: ClassSet, container: Container | None = None) -> MarkerArray:
    """Return approach arrows, class/score labels and the container's outlines.

    The first marker clears old ones.
    """
    markers = [Marker(header=header, action=Marker.DELETEALL)] + container_markers(container,
                                                                                   header)
    for i, c in enumerate(candidates):
        r, g, b = (v / 255.0 for v in class_set.by_id(c.class_id).color)
        colour = ColorRGBA(r=r, g=g, b=b, a=1.0)
        tip = Point(x=float(c.position[0]), y=float(c.position[1]), z=float(c.position[2]))
        start = c.position + ARROW_LENGTH_M * c.normal  # approach along -normal, onto the surface
        arrow = Marker(header=header, ns='approach', id=i, type=Marker.ARROW, action=Marker.ADD,
                       color=colour)
        arrow.points = [Point(x=float(start[0]), y=float(start[1]), z=float(start[2])), tip]
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.006, 0.012, 0.02
        arrow.pose.orientation.w = 1.0
        text = Marker(header=header, ns='label', id=i, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, color=colour, text=f'{c.class_name} {c.score:.2f}')
        text.pose.position = Point(x=float(start[0]), y=float(start[1]),
                                   z=float(start[2]) - 0.01)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.02
        markers += [arrow, text]
    return MarkerArray(markers=markers)
