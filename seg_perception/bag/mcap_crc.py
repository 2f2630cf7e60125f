"""MCAP chunk CRCs: write them (rosbags leaves them 0) and read chunks one by one, checked.

Writing: `CrcMcapWriter` subclasses rosbags' MCAP writer. rosbags writes the Chunk record's
`uncompressed_crc` as a literal 0 inside `close_chunk`; the chunk's uncompressed records are
still in memory when that method starts, so the subclass takes their CRC32 first, lets rosbags
write the chunk, then seeks back and overwrites those 4 bytes. That costs one crc32 over the
~1 MiB chunk in RAM per chunk and copies no rosbags code; a post-write pass would have to read
every byte of the file again. The footer's `summary_crc` is filled the same way on close (the
summary is small). The Data End record's `data_section_crc` stays 0 ("not computed", as the C++
MCAP writer behind `ros2 bag record` leaves it by default): it would need the whole file again.

Reading: rosbags stops a whole read at the first chunk whose CRC does not match, so a reader
that wants to skip one bad chunk and go on needs the chunks one at a time: `read_index` parses
the summary (channels and chunk indexes) and `read_chunk` returns one chunk's messages after
checking its CRC (per https://mcap.dev/spec, a 0 CRC means "not computed").
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
import struct
from typing import BinaryIO
import zlib

from rosbags.rosbag2.storage_mcap import DECOMPRESSORS, McapWriter

__all__ = ['ChunkError', 'ChunkIndex', 'CrcMcapWriter', 'McapError', 'McapIndex',
           'read_chunk', 'read_index', 'write_summary_crc']

MAGIC = b'\x89MCAP0\r\n'
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_CHUNK_INDEX = 0x03, 0x04, 0x05, 0x06, 0x08
#: footer record: opcode, length, summary_start, summary_offset_start, summary_crc
FOOTER_SIZE = 1 + 8 + 8 + 8 + 4
#: offset of `uncompressed_crc` in a Chunk record: opcode, length, start, end, size
CHUNK_CRC_OFFSET = 1 + 8 + 8 + 8 + 8
_CRC = struct.Struct('<I')
_RECORD = struct.Struct('<BQ')


class McapError(ValueError):
    """An MCAP file whose structure (magic, footer, summary) cannot be parsed."""


class ChunkError(ValueError):
    """One chunk that cannot be used: CRC mismatch, bad compression or malformed records."""


@dataclass(frozen=True)
class ChunkIndex:
    """Where a chunk lies and what it holds, from its Chunk Index record."""

    start_ns: int
    end_ns: int
    offset: int
    length: int
    compression: str
    compressed_size: int
    uncompressed_size: int
    #: channel id -> number of messages (from the Message Index records' sizes)
    counts: dict[int, int]

    @property
    def records_offset(self) -> int:
        """Return the file offset of the chunk's (compressed) records."""
        return self.offset + CHUNK_CRC_OFFSET + 4 + 4 + len(self.compression.encode()) + 8


@dataclass(frozen=True)
class McapIndex:
    """The summary of one MCAP file: channels (id -> topic, type) and chunks in file order."""

    channels: dict[int, tuple[str, str]]
    chunks: list[ChunkIndex]
    summary_crc_ok: bool | None  # None: the file carries no summary CRC


class CrcMcapWriter(McapWriter):
    """rosbags' MCAP writer that fills in chunk CRCs and the summary CRC (see the module)."""

    def close_chunk(self) -> None:
        """Write the pending chunk with rosbags, then put its CRC32 into the record."""
        with self.chunk.bio.getbuffer() as records:
            crc = zlib.crc32(records)
        start = self.bio.tell()
        super().close_chunk()
        end = self.bio.tell()
        self.bio.seek(start + CHUNK_CRC_OFFSET)
        self.bio.write(_CRC.pack(crc))
        self.bio.seek(end)

    def close(self, version: int, metadata: str) -> None:
        """Finish the file with rosbags, then fill in the footer's summary CRC."""
        super().close(version, metadata)
        write_summary_crc(self.path)


def _footer(f: BinaryIO) -> tuple[int, int, int, int]:
    """Return (footer offset, summary_start, summary_offset_start, summary_crc)."""
    f.seek(0, 2)
    size = f.tell()
    if size < 2 * len(MAGIC) + FOOTER_SIZE:
        raise McapError(f'file of {size} bytes is too short for MCAP')
    f.seek(0)
    if f.read(len(MAGIC)) != MAGIC:
        raise McapError('file does not start with the MCAP magic')
    footer_at = size - len(MAGIC) - FOOTER_SIZE
    f.seek(footer_at)
    data = f.read(FOOTER_SIZE + len(MAGIC))
    opcode, length = _RECORD.unpack_from(data)
    if data[FOOTER_SIZE:] != MAGIC or opcode != 0x02 or length != 20:
        raise McapError('file does not end with an MCAP footer and magic')
    summary_start, summary_offset_start, crc = struct.unpack_from('<QQI', data, 9)
    if summary_start and not len(MAGIC) < summary_start <= footer_at:
        raise McapError(f'summary offset {summary_start} lies outside the file')
    return footer_at, summary_start, summary_offset_start, crc


def write_summary_crc(path: str | Path) -> int:
    """Fill in the footer's summary CRC of a finished MCAP file in place; return it."""
    with open(path, 'r+b') as f:
        footer_at, summary_start, _, _ = _footer(f)
        if not summary_start:
            return 0
        crc = _summary_crc(f, summary_start, footer_at)
        f.seek(footer_at + FOOTER_SIZE - 4)
        f.write(_CRC.pack(crc))
    return crc


def _summary_crc(f: BinaryIO, summary_start: int, footer_at: int) -> int:
    """Return the CRC32 from the summary start through the footer's summary_offset_start."""
    f.seek(summary_start)
    return zlib.crc32(f.read(footer_at + FOOTER_SIZE - 4 - summary_start))


def _string(rec: BytesIO) -> str:
    (length,) = _CRC.unpack(rec.read(4))
    return rec.read(length).decode()


def read_index(f: BinaryIO) -> McapIndex | None:
    """Parse an MCAP file's summary; None when it has no chunk index (unindexed file)."""
    try:
        footer_at, summary_start, _, summary_crc = _footer(f)
        if not summary_start:
            return None
        crc_ok = None if not summary_crc else (
            _summary_crc(f, summary_start, footer_at) == summary_crc)
        f.seek(summary_start)
        summary = BytesIO(f.read(footer_at - summary_start))
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, str]] = {}
        chunks: list[ChunkIndex] = []
        while summary.tell() < footer_at - summary_start:
            opcode, length = _RECORD.unpack(summary.read(9))
            rec = BytesIO(summary.read(length))
            if opcode == OP_SCHEMA:
                (schema_id,) = struct.unpack('<H', rec.read(2))
                schemas[schema_id] = _string(rec)
            elif opcode == OP_CHANNEL:
                channel_id, schema_id = struct.unpack('<HH', rec.read(4))
                channels[channel_id] = (_string(rec), schemas.get(schema_id, ''))
            elif opcode == OP_CHUNK_INDEX:
                chunks.append(_chunk_index(rec))
    except (struct.error, UnicodeDecodeError, OSError) as exc:
        raise McapError(f'cannot parse the MCAP summary: {exc}') from exc
    if not chunks:
        return None
    return McapIndex(channels, chunks, crc_ok)


def _chunk_index(rec: BytesIO) -> ChunkIndex:
    """Parse a Chunk Index record; message counts follow from the Message Index offsets."""
    start_ns, end_ns, offset, length = struct.unpack('<QQQQ', rec.read(32))
    (map_size,) = _CRC.unpack(rec.read(4))
    index_offsets = sorted((at, cid) for cid, at in struct.iter_unpack('<HQ', rec.read(map_size)))
    (index_length,) = struct.unpack('<Q', rec.read(8))
    compression = _string(rec)
    compressed_size, uncompressed_size = struct.unpack('<QQ', rec.read(16))
    ends = [at for at, _ in index_offsets[1:]] + [offset + length + index_length]
    # a Message Index record: opcode, length, channel id, array size, then 16 bytes a message
    counts = {cid: (end - at - 15) // 16 for (at, cid), end in zip(index_offsets, ends)}
    return ChunkIndex(start_ns, end_ns, offset, length, compression, compressed_size,
                      uncompressed_size, {cid: n for cid, n in counts.items() if n > 0})


def read_chunk(f: BinaryIO, chunk: ChunkIndex) -> tuple[bool, list[tuple[int, int, bytes]]]:
    """Return (CRC checked, [(channel id, log time ns, data)] in log-time order) of a chunk.

    Raise ChunkError when its CRC does not match, it does not decompress, or its records do not
    parse. A chunk with CRC 0 is returned unchecked (False).
    """
    f.seek(chunk.offset)
    head = f.read(CHUNK_CRC_OFFSET + 4)
    if len(head) != CHUNK_CRC_OFFSET + 4 or head[0] != OP_CHUNK:
        raise ChunkError(f'no chunk record at offset {chunk.offset}')
    (crc,) = _CRC.unpack_from(head, CHUNK_CRC_OFFSET)
    f.seek(chunk.records_offset)
    compressed = f.read(chunk.compressed_size)
    decompress = DECOMPRESSORS.get(chunk.compression)
    if decompress is None:
        raise ChunkError(f'unsupported chunk compression {chunk.compression!r}')
    try:
        records = decompress(compressed, chunk.uncompressed_size)
    except Exception as exc:  # lz4 and zstd raise their own error types
        raise ChunkError(f'cannot decompress ({chunk.compression}): {exc}') from exc
    if len(records) != chunk.uncompressed_size:
        raise ChunkError(f'{len(records)} bytes of records, the index says '
                         f'{chunk.uncompressed_size}')
    if crc and zlib.crc32(records) != crc:
        raise ChunkError('CRC mismatch')
    return bool(crc), _messages(records)


def _messages(records: bytes) -> list[tuple[int, int, bytes]]:
    """Return the Message records of a chunk's records, sorted by log time."""
    messages, at, end = [], 0, len(records)
    try:
        while at < end:
            opcode, length = _RECORD.unpack_from(records, at)
            body = at + 9
            at = body + length
            if at > end:
                raise ChunkError(f'a record of {length} bytes overruns the chunk')
            if opcode == OP_MESSAGE:
                channel_id, _, log_time_ns = struct.unpack_from('<HIQ', records, body)
                messages.append((channel_id, log_time_ns, records[body + 22:at]))
    except struct.error as exc:
        raise ChunkError(f'malformed records: {exc}') from exc
    messages.sort(key=lambda item: item[1])
    return messages
