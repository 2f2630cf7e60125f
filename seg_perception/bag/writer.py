"""Write rosbag2 bags (MCAP storage) without ROS, with the `rosbags` library.

`BagWriter` always finalises the bag on close, also when the `with` block ends in an
exception or Ctrl-C, so an interrupted recording stays readable (rosbags' own context manager
aborts instead, leaving no metadata.yaml). Only a killed process (SIGKILL) loses the bag.
MCAP files carry real chunk CRCs and a summary CRC (seg_perception.bag.mcap_crc explains how),
so BagReader can tell a damaged chunk from a sound one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys.store import Typestore

from seg_perception.bag.mcap_crc import CrcMcapWriter
from seg_perception.bag.reader import BagError, default_typestore

__all__ = ['BagWriter']

_STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


class _CrcWriter(Writer):
    """rosbags' bag writer with the MCAP storage that writes CRCs (rosbags' own writes 0)."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: CrcMcapWriter}


class BagWriter:
    """A new rosbag2 folder open for writing; topics are registered once, then written to."""

    def __init__(self, path: str | Path, *, typestore: Typestore | None = None,
                 storage: str = 'mcap') -> None:
        """Create the bag folder (it must not exist yet)."""
        if storage not in _STORAGES:
            raise BagError(f'unknown bag storage {storage!r}; supported: {", ".join(_STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'bag {str(self.path)!r} exists already; not overwriting')
        self.typestore = typestore or default_typestore()
        try:
            self._writer = _CrcWriter(self.path, version=Writer.VERSION_LATEST,
                                      storage_plugin=_STORAGES[storage])
            self._writer.open()
        except Exception as exc:
            raise BagError(f'cannot create bag {str(self.path)!r}: {exc}') from exc
        self._connections: dict[str, Any] = {}
        self.message_count = 0
        self._closed = False

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def topics(self) -> dict[str, str]:
        """Return registered topic -> message type."""
        return {topic: c.msgtype for topic, c in self._connections.items()}

    def add_topic(self, topic: str, msgtype: str, *, msgdef: str | None = None,
                  rihs01: str | None = None) -> None:
        """Register `topic` with a message type ('sensor_msgs/msg/Image'); idempotent."""
        if topic in self._connections:
            if self._connections[topic].msgtype != msgtype:
                raise BagError(f'topic {topic} is registered as '
                               f'{self._connections[topic].msgtype}, not {msgtype}')
            return
        if msgdef is None and msgtype not in self.typestore.fielddefs:
            raise BagError(f'message type {msgtype!r} is not in the typestore; pass msgdef')
        try:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self.typestore, msgdef=msgdef, rihs01=rihs01)
        except Exception as exc:
            raise BagError(f'cannot add topic {topic} ({msgtype}): {exc}') from exc

    def write_raw(self, topic: str, log_time_ns: int, rawdata: bytes | memoryview) -> None:
        """Write one CDR-serialized message (as rmw gives it) on a registered topic."""
        if self._closed:
            raise BagError(f'bag {str(self.path)!r} is closed')
        if topic not in self._connections:
            raise BagError(f'topic {topic} is not registered; registered: '
                           f'{", ".join(self._connections) or "(none)"}')
        self._writer.write(self._connections[topic], int(log_time_ns), rawdata)
        self.message_count += 1

    def write(self, topic: str, log_time_ns: int, message: Any) -> None:
        """Serialize a rosbags message object and write it; registers the topic if needed."""
        msgtype = getattr(message, '__msgtype__', None)
        if msgtype is None:
            raise BagError(f'expected a rosbags message object, got {type(message).__name__}')
        self.add_topic(topic, msgtype)
        self.write_raw(topic, log_time_ns, self.typestore.serialize_cdr(message, msgtype))

    def close(self) -> None:
        """Write the index and metadata.yaml (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        except Exception as exc:
            raise BagError(f'cannot finalise bag {str(self.path)!r}: {exc}') from exc
