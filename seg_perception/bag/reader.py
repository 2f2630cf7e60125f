"""Read rosbag2 bags (MCAP or sqlite3) without ROS, with the `rosbags` library.

MCAP chunks are read one at a time (seg_perception.bag.mcap_crc) and their CRCs checked: a
corrupt chunk is reported once (topics, time range, messages lost) in the reader's `damage` and
its messages are skipped, and the rest of the bag still plays; rosbags alone would stop the
whole read at it, or, with CRC 0 as rosbags writes, deliver the damaged bytes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import functools
import heapq
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rosbags.rosbag2 import Reader
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

from seg_perception.bag.mcap_crc import ChunkError, ChunkIndex, McapError, McapIndex, \
    read_chunk, read_index

__all__ = ['BagDamage', 'BagError', 'BagMessage', 'BagReader', 'CorruptChunk', 'TopicInfo',
           'UndecodableError', 'default_typestore']


class BagError(ValueError):
    """A bag that is missing, unreadable, or lacks what was asked of it."""


class UndecodableError(BagError):
    """A message whose bytes do not deserialize as its type (damaged, or a wrong type)."""


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


@dataclass(frozen=True)
class CorruptChunk:
    """An MCAP chunk whose messages were skipped, and why."""

    file: str
    offset: int
    topics: tuple[str, ...]
    start_ns: int
    end_ns: int
    messages: int
    reason: str

    def describe(self, bag_start_ns: int) -> str:
        """Return a one-line report: where, which topics and times, how many messages."""
        return (f'corrupt chunk at byte {self.offset} of {self.file} ({self.reason}): '
                f'{self.messages} message(s) lost on {", ".join(self.topics) or "(no topic)"}, '
                f'log time {_seconds(self.start_ns - bag_start_ns)}..'
                f'{_seconds(self.end_ns - bag_start_ns)} s into the bag')


def _seconds(ns: int) -> str:
    return f'{ns * 1e-9:+.3f}'


@dataclass
class BagDamage:
    """What reading a bag met, each item once: corrupt chunks, undecodable messages, no CRCs.

    Several readers of one bag (the evaluation opens it more than once) can share one, so each
    problem is reported once; `on_report` gets every new one as a one-line message.
    """

    on_report: Callable[[str], None] | None = None
    chunks: dict[tuple[str, int], CorruptChunk] = field(default_factory=dict)
    undecodable: dict[tuple[str, int], str] = field(default_factory=dict)
    unchecked_files: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        """Return True when messages were lost (missing CRCs alone are no damage)."""
        return bool(self.chunks or self.undecodable)

    @property
    def messages_lost(self) -> int:
        """Return the messages skipped: those of corrupt chunks plus undecodable ones."""
        return sum(c.messages for c in self.chunks.values()) + len(self.undecodable)

    def summary(self) -> str:
        """Return 'N messages lost in K corrupt chunks' (and the undecodable count, if any)."""
        text = (f'{sum(c.messages for c in self.chunks.values())} messages lost in '
                f'{len(self.chunks)} corrupt chunks')
        if self.undecodable:
            text += f', {len(self.undecodable)} undecodable message(s) skipped'
        return text

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-able account for reports."""
        return {'messages_lost': self.messages_lost, 'summary': self.summary(),
                'corrupt_chunks': [vars(c) | {'topics': list(c.topics)}
                                   for c in self.chunks.values()],
                'undecodable_messages': [{'topic': t, 'log_time_ns': ns, 'reason': r}
                                         for (t, ns), r in self.undecodable.items()],
                'files_without_crcs': sorted(self.unchecked_files)}

    def exit_line(self, allow_corrupt: bool) -> str | None:
        """Return the CLIs' closing line ('error: ...' or, when allowed, 'warning: ...')."""
        if not self:
            return None
        if allow_corrupt:
            return f'warning: {self.summary()} (accepted: --allow-corrupt)'
        return f'error: {self.summary()}; pass --allow-corrupt to accept the loss'

    def _report(self, text: str) -> None:
        if self.on_report is not None:
            self.on_report(text)

    def add_chunk(self, chunk: CorruptChunk, bag_start_ns: int) -> None:
        """Record a corrupt chunk (once) and report it."""
        if (chunk.file, chunk.offset) not in self.chunks:
            self.chunks[chunk.file, chunk.offset] = chunk
            self._report(chunk.describe(bag_start_ns))

    def add_undecodable(self, topic: str, log_time_ns: int, reason: str,
                        bag_start_ns: int) -> None:
        """Record a message that does not deserialize (once) and report it."""
        if (topic, log_time_ns) not in self.undecodable:
            self.undecodable[topic, log_time_ns] = reason
            self._report(f'undecodable message on {topic} at '
                         f'{_seconds(log_time_ns - bag_start_ns)} s into the bag, skipped: '
                         f'{reason}')

    def add_unchecked(self, file: str) -> None:
        """Note (once) that a file's chunks carry no CRCs, so corruption goes unseen."""
        if file not in self.unchecked_files:
            self.unchecked_files.add(file)
            self._report(f'warning: {file} carries no chunk CRCs (written with CRC 0): '
                         'corrupt bytes in it cannot be detected')


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

    def __init__(self, path: str | Path, *, typestore: Typestore | None = None,
                 damage: BagDamage | None = None) -> None:
        """Open the bag and read its index; raise BagError when that fails.

        Corrupt chunks and undecodable messages met later go into `damage` (a new BagDamage
        unless one is shared), and are skipped.
        """
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'bag {str(self.path)!r} does not exist')
        self.typestore = typestore or default_typestore()
        self.damage = BagDamage() if damage is None else damage
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except BagError:
            raise
        except Exception as exc:  # rosbags raises ReaderError, OSError, yaml and struct errors
            raise BagError(f'cannot open bag {str(self.path)!r}: {exc}') from exc
        try:
            self._mcap = self._mcap_indexes()
        except BagError:
            self.close()
            raise
        self._registered: set[str] = set()

    def _mcap_indexes(self) -> list[tuple[Path, McapIndex]] | None:
        """Return (file, chunk index) of each MCAP file; None: read through rosbags instead.

        rosbags keeps the reading of sqlite3 files, unindexed MCAP files and per-message
        compression; those have no chunk CRCs to check.
        """
        inner = getattr(self._reader, 'storage', None)  # a folder's reader or a file's
        storages = [inner] if isinstance(inner, McapReader) else getattr(inner, 'storages', [])
        if not storages or self._reader.compression_mode == 'message' or \
                not all(isinstance(s, McapReader) for s in storages):
            return None
        indexes = []
        for storage in storages:
            try:
                with open(storage.path, 'rb') as f:
                    index = read_index(f)
            except (McapError, OSError) as exc:
                raise BagError(f'cannot open bag {str(self.path)!r}: {exc}') from exc
            if index is None:
                return None
            if index.summary_crc_ok is False:
                raise BagError(f'the summary (index) of {Path(storage.path).name} in bag '
                               f'{str(self.path)!r} is corrupt (CRC mismatch)')
            indexes.append((Path(storage.path), index))
        return indexes

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
        if self._mcap is not None:
            selected_topics = None if topics is None else {c.topic for c in connections}
            for path, index in self._mcap:
                yield from self._mcap_messages(path, index, selected_topics, start or 0)
            return
        try:
            for connection, log_time_ns, rawdata in self._reader.messages(connections,
                                                                          start=start):
                yield BagMessage(connection.topic, connection.msgtype, int(log_time_ns),
                                 rawdata)
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f'cannot read messages of bag {str(self.path)!r}: {exc}') from exc

    def _mcap_messages(self, path: Path, index: McapIndex, topics: set[str] | None,
                       start_ns: int) -> Iterator[BagMessage]:
        """Yield one MCAP file's messages in log-time order, skipping corrupt chunks.

        Chunks are merged by time and each is read only when the merge reaches its first
        message time (a sentinel stands for it until then), as rosbags does: memory stays at
        the chunks that overlap in time.
        """
        wanted = {cid for cid, (topic, _) in index.channels.items()
                  if topics is None or topic in topics}
        chunks = [c for c in index.chunks
                  if c.end_ns >= start_ns and any(cid in wanted for cid in c.counts)]
        try:
            with open(path, 'rb') as f:
                sources = [self._chunk_messages(f, path, index, chunk, wanted, start_ns)
                           for chunk in chunks]
                for _, message in heapq.merge(*sources, key=lambda item: item[0]):
                    if message is not None:
                        yield message
        except OSError as exc:
            raise BagError(f'cannot read messages of bag {str(self.path)!r}: {exc}') from exc

    def _chunk_messages(self, f: Any, path: Path, index: McapIndex, chunk: ChunkIndex,
                        wanted: set[int], start_ns: int
                        ) -> Iterator[tuple[int, BagMessage | None]]:
        """Yield a sentinel at the chunk's start time, then its wanted messages (if sound)."""
        yield chunk.start_ns, None
        try:
            checked, records = read_chunk(f, chunk)
        except ChunkError as exc:
            topics = tuple(sorted({index.channels.get(cid, (f'channel {cid}', ''))[0]
                                   for cid in chunk.counts}))
            self.damage.add_chunk(CorruptChunk(
                path.name, chunk.offset, topics, chunk.start_ns, chunk.end_ns,
                sum(chunk.counts.values()), str(exc)), self.start_time_ns)
            return
        if not checked:
            self.damage.add_unchecked(path.name)
        for channel_id, log_time_ns, data in records:
            if channel_id in wanted and log_time_ns >= start_ns:
                topic, msgtype = index.channels[channel_id]
                yield log_time_ns, BagMessage(topic, msgtype, log_time_ns, data)

    def decoded(self, *, topics: Iterable[str] | None = None, start_offset_ns: int = 0
                ) -> Iterator[tuple[BagMessage, Any]]:
        """Yield (message, rosbags object); one that does not deserialize is reported, skipped.

        A message that fails to deserialize is lost the way a corrupt chunk's messages are:
        it goes into `damage` and the read goes on.
        """
        for message in self.messages(topics=topics, start_offset_ns=start_offset_ns):
            try:
                yield message, self.deserialize(message)
            except UndecodableError as exc:
                self.damage.add_undecodable(message.topic, message.log_time_ns, str(exc),
                                            self.start_time_ns)

    def deserialize(self, message: BagMessage) -> Any:
        """Return the rosbags message object of a BagMessage (types from the bag if unknown)."""
        if message.msgtype not in self.typestore.fielddefs:
            self._register_from_bag(message.msgtype)
        try:
            return self.typestore.deserialize_cdr(message.rawdata, message.msgtype)
        except Exception as exc:
            raise UndecodableError(f'cannot deserialize a {message.msgtype} message on '
                                   f'{message.topic}: {" ".join(str(exc).split())}') from exc

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
