"""RGB-D frames of a rosbag2 (MCAP or sqlite3): colour + registered depth + CameraInfo.

Colour and depth are paired by header stamp (within a tolerance) while the bag streams, so
memory holds only the frames still waiting for their partner; each frame takes the CameraInfo
nearest to it in time. A bag that lacks a topic, has a topic of the wrong type, or has depth
of another size than the colour (not registered) is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seg_perception.bag.reader import BagError, BagReader
from seg_perception.grasp.camera_model import InvalidCameraInfoError, PinholeCamera
from seg_perception.grasp.depth import depth_to_metres, UnsupportedDepthEncodingError
from seg_perception.time_sync import stamp_ns
from seg_perception.training.datasets import _decode_image, DatasetError

IMAGE_TYPE = 'sensor_msgs/msg/Image'
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
#: frames waiting for a partner longer than this (bag time) are dropped
_PENDING_NS = 2_000_000_000


@dataclass(frozen=True)
class RgbdFrame:
    """One colour frame with its registered depth and camera."""

    index: int
    stamp_ns: int
    rgb: np.ndarray          # (H, W, 3) uint8
    depth_m: np.ndarray      # (H, W) float32 metres, NaN invalid
    camera: PinholeCamera


class FrameError(ValueError):
    """Raised for a bag whose RGB-D frames cannot be used (the message says why)."""


def check_topics(reader: BagReader, image_topic: str, depth_topic: str, info_topic: str) -> None:
    """Raise FrameError when a topic is missing or of another type than needed."""
    topics = reader.topics
    for role, topic, msgtype in (('colour image', image_topic, IMAGE_TYPE),
                                 ('depth image', depth_topic, IMAGE_TYPE),
                                 ('CameraInfo', info_topic, INFO_TYPE)):
        if topic not in topics:
            raise FrameError(f'the bag has no {role} topic {topic!r}; topics: '
                             f'{", ".join(topics) or "(none)"}')
        if topics[topic].msgtype != msgtype:
            raise FrameError(f'{role} topic {topic!r} is {topics[topic].msgtype}, not {msgtype}')
        if topics[topic].message_count == 0:
            raise FrameError(f'{role} topic {topic!r} has no messages')


def read_cameras(reader: BagReader, info_topic: str) -> list[tuple[int, PinholeCamera]]:
    """Return (stamp ns, camera) of every usable CameraInfo, in stamp order."""
    cameras = []
    problems = []
    for _, msg in reader.decoded(topics=[info_topic]):
        try:
            cameras.append((stamp_ns(msg), PinholeCamera.from_camera_info(
                msg.k, msg.p, int(msg.width), int(msg.height))))
        except InvalidCameraInfoError as exc:
            problems.append(str(exc))
    if not cameras:
        raise FrameError(f'no usable CameraInfo on {info_topic!r}'
                         + (f': {problems[0]}' if problems else ''))
    return sorted(cameras, key=lambda item: item[0])


def _depth(msg: Any) -> np.ndarray:
    from seg_perception.conversions.image import image_to_numpy
    try:
        return depth_to_metres(np.asarray(image_to_numpy(msg)), str(msg.encoding))
    except (UnsupportedDepthEncodingError, ValueError) as exc:
        raise FrameError(f'depth image: {exc}') from exc


def _rgb(msg: Any) -> np.ndarray:
    try:
        return _decode_image(msg, want_rgb=True)
    except DatasetError as exc:
        raise FrameError(str(exc)) from exc


def iter_frames(path: str | Path, *, image_topic: str, depth_topic: str, info_topic: str,
                tolerance_ns: int = 10_000_000) -> Iterator[RgbdFrame]:
    """Yield the bag's RGB-D frames in bag order (colour/depth pairs matched by stamp).

    Raises FrameError (or BagError) for a bag that cannot give RGB-D frames.
    """
    with BagReader(path) as reader:
        check_topics(reader, image_topic, depth_topic, info_topic)
        cameras = read_cameras(reader, info_topic)
        camera_stamps = np.array([s for s, _ in cameras], dtype=np.int64)
        pending: dict[str, dict[int, Any]] = {image_topic: {}, depth_topic: {}}
        index = 0
        for message, msg in reader.decoded(topics=[image_topic, depth_topic]):
            stamp = stamp_ns(msg)
            mine = pending[message.topic]
            other = pending[depth_topic if message.topic == image_topic else image_topic]
            match = min(other, key=lambda s: abs(s - stamp), default=None)
            if match is None or abs(match - stamp) > tolerance_ns:
                mine[stamp] = msg
                for store in pending.values():   # frames that will never find a partner
                    for old in [s for s in store if s < stamp - _PENDING_NS]:
                        del store[old]
                continue
            partner = other.pop(match)
            image_msg, depth_msg = ((msg, partner) if message.topic == image_topic
                                    else (partner, msg))
            rgb, depth = _rgb(image_msg), _depth(depth_msg)
            if rgb.shape[:2] != depth.shape:
                raise FrameError(f'colour is {rgb.shape[1]}x{rgb.shape[0]} but depth is '
                                 f'{depth.shape[1]}x{depth.shape[0]}: adapt needs depth '
                                 'registered to the colour image (same size)')
            image_stamp = stamp_ns(image_msg)
            nearest = int(np.argmin(np.abs(camera_stamps - image_stamp)))
            yield RgbdFrame(index, image_stamp, rgb, depth, cameras[nearest][1])
            index += 1


def read_frame(path: str | Path, number: int, **topics: Any) -> RgbdFrame:
    """Return RGB-D frame `number` (0-based, in bag order); FrameError when there is none."""
    if number < 0:
        raise FrameError(f'frame number must be >= 0, got {number}')
    count = 0
    for frame in iter_frames(path, **topics):
        if frame.index == number:
            return frame
        count += 1
    raise FrameError(f'the bag has {count} RGB-D frame(s); frame {number} does not exist')


__all__ = ['BagError', 'FrameError', 'RgbdFrame', 'check_topics', 'iter_frames', 'read_frame',
           'read_cameras']
