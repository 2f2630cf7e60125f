"""Read rosbag2 bags (MCAP or sqlite3) without ROS, with the `rosbags` library."""

from __future__ import annotations

from dataclasses import dataclass
import functools
from pathlib import Path
from typing import Any, Iterable, Iterator

from rosbags.rosbag2 import Reader
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

__all__ = ['BagError', 'BagMessage', 'BagReader', 'TopicInfo', 'default_typestore']


class BagError(ValueError):
    """A bag that is missing, unreadable, or lacks what was asked of it."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag."""

    name: str
    msgtype: str
    message_count: int


@dataclass(frozen=True)
class BagMessage:
    """One serialized message as stored in the bag."""

    topic: str
    msgtype: str
    log_time_ns: int
    rawdata: bytes


def default_typestore() -> Typestore:
    """Return the Kilted typestore plus this project's own messages (seg_interfaces)."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(_project_types())
    return store


@functools.lru_cache(maxsize=1)
def _project_types() -> dict:
    """Parse seg_interfaces' .msg files: from the installed share folder, else the source tree."""
    folders = [Path(__file__).resolve().parents[2] / 'seg_interfaces' / 'msg']
    try:
        from ament_index_python.packages import get_package_share_directory
        folders.insert(0, Path(get_package_share_directory('seg_interfaces')) / 'msg')
    except (ImportError, LookupError, ValueError):
        pass
    types: dict = {}
    for folder in folders:
        for path in sorted(folder.glob('*.msg')) if folder.is_dir() else ():
            types.update(get_types_from_msg(path.read_text(encoding='utf-8'),
                                            f'seg_interfaces/msg/{path.stem}'))
        if types:
            break
    return types


class BagReader:
    """An open rosbag2 folder (or .mcap/.db3 file); use as a context manager or call close()."""

    def __init__(self, path: str | Path, *, typestore: Typestore | None = None) -> None:
        """Open the bag and read its index; raise BagError when that fails."""
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'bag {str(self.path)!r} does not exist')
        self.typestore = typestore or default_typestore()
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except BagError:
            raise
        except Exception as exc:  # rosbags raises ReaderError, OSError, yaml and struct errors
            raise BagError(f'cannot open bag {str(self.path)!r}: {exc}') from exc
        self._registered: set[str] = set()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the storage files (idempotent)."""
        if self._reader.is_open:
            self._reader.close()

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Return topic name -> TopicInfo, sorted by name."""
        result = {}
        for name, info in sorted(self._reader.topics.items()):
            result[name] = TopicInfo(name, info.msgtype or '', int(info.msgcount))
        return result

    @property
    def message_count(self) -> int:
        """Return the number of messages in the bag."""
        return int(self._reader.message_count)

    @property
    def start_time_ns(self) -> int:
        """Return the log time of the first message."""
        return int(self._reader.start_time) if self.message_count else 0

    @property
    def end_time_ns(self) -> int:
        """Return the log time just after the last message (rosbags convention)."""
        return int(self._reader.end_time) if self.message_count else 0

    @property
    def duration_ns(self) -> int:
        """Return the time between the first and the last message."""
        return max(0, self.end_time_ns - self.start_time_ns - 1) if self.message_count else 0

    def check_topics(self, topics: Iterable[str]) -> list[str]:
        """Return `topics` as a list, or raise BagError naming the missing and available ones."""
        wanted = list(topics)
        available = self.topics
        missing = [t for t in wanted if t not in available]
        if missing:
            raise BagError(f'topic(s) {", ".join(missing)} not in bag {str(self.path)!r}; '
                           f'available: {", ".join(available) or "(none)"}')
        return wanted

    def messages(self, *, topics: Iterable[str] | None = None,
                 start_offset_ns: int = 0) -> Iterator[BagMessage]:
        """Yield messages in log-time order, of `topics` only if given, from an offset on."""
        if start_offset_ns < 0:
            raise BagError(f'start offset must be >= 0 ns, got {start_offset_ns}')
        connections = []
        if topics is not None:
            selected = set(self.check_topics(topics))
            connections = [c for c in self._reader.connections if c.topic in selected]
            if not connections:
                return
        start = self.start_time_ns + start_offset_ns if start_offset_ns else None
        try:
            for connection, log_time_ns, rawdata in self._reader.messages(connections,
                                                                          start=start):
                yield BagMessage(connection.topic, connection.msgtype, int(log_time_ns),
                                 rawdata)
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f'cannot read messages of bag {str(self.path)!r}: {exc}') from exc

    def deserialize(self, message: BagMessage) -> Any:
        """Return the rosbags message object of a BagMessage (types from the bag if unknown)."""
        if message.msgtype not in self.typestore.fielddefs:
            self._register_from_bag(message.msgtype)
        try:
            return self.typestore.deserialize_cdr(message.rawdata, message.msgtype)
        except Exception as exc:
            raise BagError(f'cannot deserialize a {message.msgtype} message on '
                           f'{message.topic}: {exc}') from exc

    def _register_from_bag(self, msgtype: str) -> None:
        """Add a message type the typestore lacks from the definition stored in the bag."""
        for connection in self._reader.connections:
            if connection.msgtype == msgtype and connection.msgdef.data:
                try:
                    self.typestore.register(get_types_from_msg(connection.msgdef.data, msgtype))
                except Exception as exc:
                    raise BagError(f"cannot use the bag's definition of {msgtype}: "
                                   f'{exc}') from exc
                return
        raise BagError(f'message type {msgtype} is unknown and the bag has no definition of it')
