"""Tests of MCAP chunk CRCs: BagWriter writes them, BagReader checks them and skips bad chunks."""

from __future__ import annotations

from pathlib import Path
import struct
import zlib

import numpy as np
import pytest

from seg_perception.bag import BagReader, BagWriter, default_typestore
from seg_perception.bag.mcap_crc import CHUNK_CRC_OFFSET, FOOTER_SIZE, read_index
from seg_perception.bag.messages import image_message
from seg_perception.bag.reader import BagDamage
from seg_perception.cli import main as cli_main
from seg_perception.nodes import bag_player

TOPIC = '/camera/color/image_raw'
GT = '/camera/ground_truth/labels'
FRAMES = 24
#: 160 KB a frame: rosbags closes a chunk past 1 MiB, so about 7 frames (+ labels) a chunk
SHAPE_HW = (240, 224)


def _write_bag(path: Path) -> Path:
    """Write FRAMES colour frames and their labels 0.1 s apart; return the .mcap file."""
    typestore = default_typestore()
    with BagWriter(path, typestore=typestore) as writer:
        for i in range(FRAMES):
            stamp_ns = 5_000_000_000 + i * 100_000_000
            rgb = np.full((*SHAPE_HW, 3), i * 10 % 256, np.uint8)
            writer.write(TOPIC, stamp_ns, image_message(typestore, rgb, 'rgb8', stamp_ns, 'cam'))
            labels = np.full(SHAPE_HW, i % 3, np.uint8)
            writer.write(GT, stamp_ns, image_message(typestore, labels, 'mono8', stamp_ns, 'cam'))
    return path / f'{path.name}.mcap'


def _index(mcap: Path):
    with open(mcap, 'rb') as f:
        return read_index(f)


def _flip(mcap: Path, at: int, count: int) -> None:
    data = bytearray(mcap.read_bytes())
    data[at:at + count] = bytes(b ^ 0xFF for b in data[at:at + count])
    mcap.write_bytes(bytes(data))


@pytest.fixture
def bag(tmp_path) -> Path:
    _write_bag(tmp_path / 'bag')
    return tmp_path / 'bag'


def test_written_chunks_carry_correct_crcs(bag):
    mcap = bag / 'bag.mcap'
    data = mcap.read_bytes()
    index = _index(mcap)
    assert len(index.chunks) >= 3 and index.summary_crc_ok is True
    for chunk in index.chunks:
        (crc,) = struct.unpack_from('<I', data, chunk.offset + CHUNK_CRC_OFFSET)
        records = data[chunk.records_offset:chunk.records_offset + chunk.compressed_size]
        assert chunk.compression == '' and len(records) == chunk.uncompressed_size
        assert crc != 0 and crc == zlib.crc32(records)
    (summary_start,) = struct.unpack_from('<Q', data, len(data) - 8 - FOOTER_SIZE + 9)
    (summary_crc,) = struct.unpack_from('<I', data, len(data) - 8 - 4)
    assert summary_crc == zlib.crc32(data[summary_start:len(data) - 8 - 4])
    with BagReader(bag) as reader:  # rosbags' own reader checks non-zero chunk CRCs too
        assert len(list(reader._reader.messages())) == 2 * FRAMES
        assert len(list(reader.messages())) == 2 * FRAMES and not reader.damage


def test_corrupt_chunk_is_reported_and_exactly_its_messages_skipped(bag):
    mcap = bag / 'bag.mcap'
    index = _index(mcap)
    chunk = index.chunks[1]
    with BagReader(bag) as reader:
        before = list(reader.messages())
    in_chunk = {(m.topic, m.log_time_ns) for m in before
                if chunk.start_ns <= m.log_time_ns <= chunk.end_ns}
    assert len(in_chunk) == sum(chunk.counts.values()) > 0
    # flip 64 bytes in the middle of the chunk's records (pixel data, lengths intact)
    _flip(mcap, chunk.records_offset + chunk.compressed_size // 2, 64)
    lines: list[str] = []
    with BagReader(bag, damage=BagDamage(on_report=lines.append)) as reader:
        after = list(reader.messages())
        again = list(reader.messages(topics=[TOPIC]))  # a second pass reports nothing new
        damage = reader.damage
    assert {(m.topic, m.log_time_ns) for m in after} == \
        {(m.topic, m.log_time_ns) for m in before} - in_chunk
    assert len(again) == FRAMES - chunk.counts[1]
    assert [m.log_time_ns for m in after] == sorted(m.log_time_ns for m in after)
    assert len(damage.chunks) == 1 and damage.messages_lost == len(in_chunk)
    (report,) = lines
    start_s = (chunk.start_ns - 5_000_000_000) / 1e9
    assert f'corrupt chunk at byte {chunk.offset} of bag.mcap (CRC mismatch)' in report
    assert f'{len(in_chunk)} message(s) lost on {TOPIC}, {GT}' in report
    assert f'{start_s:+.3f}..' in report
    assert damage.summary() == f'{len(in_chunk)} messages lost in 1 corrupt chunks'


def test_bag_without_crcs_is_read_with_one_warning(bag):
    mcap = bag / 'bag.mcap'
    data = bytearray(mcap.read_bytes())
    for chunk in _index(mcap).chunks:
        data[chunk.offset + CHUNK_CRC_OFFSET:chunk.offset + CHUNK_CRC_OFFSET + 4] = bytes(4)
    mcap.write_bytes(bytes(data))
    lines: list[str] = []
    with BagReader(bag, damage=BagDamage(on_report=lines.append)) as reader:
        assert len(list(reader.messages())) == 2 * FRAMES
        assert len(list(reader.messages())) == 2 * FRAMES
        assert not reader.damage and reader.damage.unchecked_files == {'bag.mcap'}
    assert len(lines) == 1 and 'carries no chunk CRCs' in lines[0]


def test_broken_records_and_undecodable_messages_are_reported_not_raised(tmp_path):
    typestore = default_typestore()
    with BagWriter(tmp_path / 'bag', typestore=typestore) as writer:
        for i in range(3):
            writer.write(TOPIC, i, image_message(typestore, np.zeros((2, 2, 3), np.uint8),
                                                 'rgb8', i, 'cam'))
        writer.write_raw(TOPIC, 3, b'\x00\x01\x00\x00\xff\xff\xff')  # truncated CDR
    mcap = tmp_path / 'bag' / 'bag.mcap'
    with BagReader(tmp_path / 'bag') as reader:
        decoded = list(reader.decoded(topics=[TOPIC]))
        assert [m.log_time_ns for m, _ in decoded] == [0, 1, 2]
        assert list(reader.damage.undecodable) == [(TOPIC, 3)]
        assert reader.damage.messages_lost == 1
    # a record length that overruns the chunk, in a bag without CRCs: the chunk is skipped
    (chunk,) = _index(mcap).chunks
    data = bytearray(mcap.read_bytes())
    data[chunk.offset + CHUNK_CRC_OFFSET:chunk.offset + CHUNK_CRC_OFFSET + 4] = bytes(4)
    first_record = chunk.records_offset  # the schema record: opcode, then u64 length
    data[first_record + 1:first_record + 9] = struct.pack('<Q', 1 << 40)
    mcap.write_bytes(bytes(data))
    with BagReader(tmp_path / 'bag') as reader:
        assert list(reader.messages()) == []
        (bad,) = reader.damage.chunks.values()
        assert 'overruns the chunk' in bad.reason and bad.messages == 4


def test_player_exits_non_zero_on_a_corrupt_chunk_unless_allowed(bag, capsys):
    mcap = bag / 'bag.mcap'
    chunk = _index(mcap).chunks[0]
    _flip(mcap, chunk.records_offset + chunk.compressed_size // 2, 64)
    lost = sum(chunk.counts.values())
    args = [str(bag), '--rate', '50', '--no-progress', '--qos', 'best_effort']
    assert bag_player.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith('bag_player: corrupt chunk at byte')
    assert err[1] == (f'bag_player: error: {lost} messages lost in 1 corrupt chunks; pass '
                      '--allow-corrupt to accept the loss')
    assert bag_player.main([*args, '--allow-corrupt']) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith(f'bag_player: warning: {lost} messages lost')


def test_evaluate_exits_non_zero_on_a_corrupt_chunk_unless_allowed(bag, tmp_path, capsys):
    mcap = bag / 'bag.mcap'
    chunk = _index(mcap).chunks[1]
    _flip(mcap, chunk.records_offset + chunk.compressed_size // 2, 64)
    frames_lost = chunk.counts[1]
    argv = ['evaluate', '--mode', 'bag', '--bag', str(bag), '--image-topic', TOPIC,
            '--gt-topic', GT, '--no-progress', '--out', str(tmp_path / 'eval')]
    assert cli_main(argv) == 1
    captured = capsys.readouterr()
    assert 'evaluate: corrupt chunk at byte' in captured.err
    assert 'pass --allow-corrupt' in captured.err
    assert f'processed {FRAMES - frames_lost}, dropped {frames_lost} (bad_input ' \
           f'{frames_lost})' in captured.out
    import json
    report = json.loads((tmp_path / 'eval' / 'report.json').read_text())
    assert report['bag_damage']['messages_lost'] == sum(chunk.counts.values())
    assert cli_main([*argv, '--allow-corrupt']) == 0
    assert 'warning: ' in capsys.readouterr().err
