"""Evaluate segmentation on a rosbag2: offline (engine over every frame) or online (real nodes).

Offline: every image of the bag goes through a SegmentationEngine in this process; nothing is
dropped except frames that cannot be decoded. Online: the bag is replayed by `bag_player` into a
real `segmentation_node` process, and `bag_recorder` records the input and the node's labels; the
recorded bag is then scored. Labels are matched to inputs and ground truth by header stamp;
latency is the recorder's receive time of the labels minus its receive time of the input with
the same stamp (both on one clock, so odd bag stamps do not matter). Every input frame is
accounted for: processed, or dropped with a reason (see accounting.DROP_REASONS).
The recorder takes its receive times on the system (wall) clock: the player publishes no /clock
and no process runs with use_sim_time, so latency is wall time whatever the bag's stamps are.

Corrupt MCAP chunks of the bag (CRC mismatch) and messages that do not deserialize are skipped
and reported once each (`BagDamage`): the report gets a `bag_damage` section and the CLI exits 1
unless --allow-corrupt. Offline, the frames lost that way count as dropped ('bad_input');
online, they are not replayed, so they are not in the frames in.

Ground truth at another resolution than the image is scaled to the image size with nearest
neighbour (class ids stay class ids) and a warning is put in the report.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
import shutil
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from seg_perception.bag.reader import BagDamage, BagError, BagReader, UndecodableError
from seg_perception.classes import ClassSet
from seg_perception.conversions import image_to_numpy
from seg_perception.conversions.color import as_rgb8
from seg_perception.evaluation.accounting import FrameAccounting, latency_summary, \
    throughput_fps
from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.evaluation.report import Sample
from seg_perception.time_sync import stamp_ns

__all__ = ['EvaluationInputError', 'GroundTruth', 'LABEL_ENCODINGS', 'OnlineRun',
           'collect_by_stamp', 'evaluate_bag_offline', 'evaluate_bag_online', 'images_lookup',
           'labels_topic_for', 'model_class_set',
           'score_recorded', 'stamp_ns']

LABEL_ENCODINGS = ('mono8', '8UC1')
#: how many sample frames the report's strip shows
SAMPLE_COUNT = 4
SEGMENTATION_NODE = 'seg_perception.nodes.segmentation_node'
BAG_PLAYER = 'seg_perception.nodes.bag_player'
BAG_RECORDER = 'seg_perception.nodes.bag_recorder'
LATENCY_DEFINITION = ('receive time of the labels minus receive time of the input image with the '
                      'same stamp, both taken by the recorder on the wall clock (includes DDS '
                      'transport, decoding, inference and publishing)')


class EvaluationInputError(ValueError):
    """A bag, topic or ground truth that cannot be evaluated (the message says why)."""


def labels_topic_for(image_topic: str) -> str:
    """Return the segmentation node's labels topic for an input image topic."""
    from seg_perception.segmentation.node_settings import camera_prefix
    prefix, _ = camera_prefix(image_topic)
    return f'{prefix}/segmentation/labels' if prefix else 'segmentation/labels'


def model_class_set(model: str) -> ClassSet:
    """Return the class set a model predicts, without loading its weights."""
    from seg_perception.segmentation.loader import read_spec
    from seg_perception.segmentation.model_spec import model_file
    path = model_file(model)
    if path.suffix and path.with_suffix('.json').is_file():
        return read_spec(path.with_suffix('.json')).class_set
    return ClassSet.default()


def open_bag(path: str | Path, topics: Iterable[str],
             damage: BagDamage | None = None) -> BagReader:
    """Open a bag and check that `topics` are in it; raise EvaluationInputError otherwise."""
    try:
        reader = BagReader(path, damage=damage)
    except BagError as exc:  # one line: YAML and MCAP errors span several
        raise EvaluationInputError(' '.join(str(exc).split())) from exc
    try:
        reader.check_topics([t for t in topics if t])
    except BagError as exc:
        reader.close()
        raise EvaluationInputError(str(exc)) from exc
    return reader


@dataclass
class GroundTruth:
    """Ground-truth label images of a bag by stamp, scaled to the image size when needed."""

    by_stamp: dict[int, deque] = field(default_factory=lambda: defaultdict(deque))
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_bag(cls, reader: BagReader, topic: str) -> GroundTruth:
        """Read every label image of `topic` (mono8 class ids)."""
        truth = cls()
        for _, msg in reader.decoded(topics=[topic]):
            if msg.encoding not in LABEL_ENCODINGS:
                raise EvaluationInputError(f'ground truth topic {topic} has encoding '
                                           f'{msg.encoding!r}; expected mono8 class ids')
            truth.by_stamp[stamp_ns(msg)].append(np.array(image_to_numpy(msg)))
        if not truth.by_stamp:
            raise EvaluationInputError(f'ground truth topic {topic} has no messages')
        return truth

    def take(self, stamp: int, shape_hw: tuple[int, int]) -> np.ndarray | None:
        """Return (and consume) the ground truth with `stamp` at `shape_hw`, or None."""
        queue = self.by_stamp.get(stamp)
        if not queue:
            return None
        gt = queue.popleft() if len(queue) > 1 else queue[0]
        if gt.shape != tuple(shape_hw):
            text = (f'ground truth is {gt.shape[1]}x{gt.shape[0]} but images are '
                    f'{shape_hw[1]}x{shape_hw[0]}: scaled with nearest neighbour')
            if text not in self.warnings:
                self.warnings.append(text)
            gt = cv2.resize(gt, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_NEAREST)
        return gt


def decode_rgb(reader: BagReader, message: Any) -> tuple[int, np.ndarray]:
    """Return (stamp ns, RGB uint8 image) of an Image bag message."""
    msg = reader.deserialize(message)
    if not hasattr(msg, 'encoding'):
        raise EvaluationInputError(f'topic {message.topic} holds {message.msgtype}, not '
                                   'sensor_msgs/msg/Image')
    return stamp_ns(msg), np.array(as_rgb8(image_to_numpy(msg), msg.encoding))


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='frame', disable=not enabled, file=sys.stderr)


def _pick_samples(count: int, wanted: int = SAMPLE_COUNT) -> set[int]:
    if count <= 0:
        return set()
    return {int(i) for i in np.linspace(0, count - 1, min(wanted, count)).round()}


def evaluate_bag_offline(bag: str | Path, *, image_topic: str, gt_topic: str | None,
                         model: str = 'default', device: str = 'cpu', upsample: str = 'nearest',
                         max_frames: int = 0, progress: bool = True,
                         should_stop: Callable[[], bool] = lambda: False,
                         damage: BagDamage | None = None
                         ) -> tuple[dict[str, Any], list[float], list[Sample]]:
    """Segment every image of `image_topic` in this process; return (report, latencies, samples).

    `should_stop()` (polled before each frame; the CLI wires Ctrl-C to it through StopSignals)
    or a KeyboardInterrupt ends the loop early: the report covers the frames done so far, says
    `partial: true` and counts the rest as dropped ('interrupted').
    """
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
    reader = open_bag(bag, [image_topic, gt_topic], damage)
    try:
        total = reader.topics[image_topic].message_count
        if max_frames > 0:
            total = min(total, max_frames)
        truth = GroundTruth.from_bag(reader, gt_topic) if gt_topic else None
        class_set = model_class_set(model)
        scores = SegmentationScores(num_classes=class_set.num_outputs,
                                    class_names=_names(class_set))
        accounting = FrameAccounting()
        latencies: list[float] = []
        samples: list[Sample] = []
        sample_at = _pick_samples(total)
        partial = False
        unscored = 0
        index = 0
        started = time.perf_counter()
        engine = None
        bar = _progress(total, f'offline {Path(bag).name}', progress)
        try:
            engine = SegmentationEngine(EngineConfig(
                model=model, device=device, upsample=upsample, precision='fp32',
                warmup_iterations=1))
            if engine.class_set.num_outputs != class_set.num_outputs:
                class_set = engine.class_set
                scores = SegmentationScores(num_classes=class_set.num_outputs,
                                            class_names=_names(class_set))
            for message in reader.messages(topics=[image_topic]):
                if index >= total:
                    break
                if should_stop():
                    partial = True
                    break
                try:
                    stamp, rgb = decode_rgb(reader, message)
                    t0 = time.perf_counter()
                    result = engine.segment([rgb])[0]
                    latencies.append((time.perf_counter() - t0) * 1e3)
                except (BagError, ValueError) as exc:
                    if isinstance(exc, UndecodableError):
                        reader.damage.add_undecodable(message.topic, message.log_time_ns,
                                                      str(exc), reader.start_time_ns)
                    accounting.add_dropped(index, 'bad_input')
                    print(f'frame {index}: {exc}', file=sys.stderr)
                else:
                    accounting.add_processed(index)
                    gt = truth.take(stamp, rgb.shape[:2]) if truth else None
                    if gt is not None:
                        scores.update(gt, result.labels)
                    else:
                        unscored += 1
                    if index in sample_at:
                        samples.append((f'frame {index}', np.array(rgb), gt, result.labels))
                index += 1
                bar.update(1)
        except KeyboardInterrupt:
            partial = True
        finally:
            bar.close()
        # The interrupt may land after a frame was accounted, before index moved; frames of
        # corrupt chunks never arrive (reader.damage says which).
        for rest in range(total):
            if rest not in accounting:
                accounting.add_dropped(rest, 'interrupted' if partial else 'bad_input')
        wall_s = time.perf_counter() - started
    finally:
        reader.close()
    model_info = {'name': model, 'device': device} if engine is None else {
        'name': engine.model_name, 'device': str(engine.device),
        'input_size': 'x'.join(str(v) for v in engine.input_size)}
    report = {
        'title': f'Offline evaluation of {model_info["name"]} on {Path(bag).name}',
        'mode': 'offline',
        'partial': partial,
        'source': {'bag': str(bag), 'image_topic': image_topic, 'gt_topic': gt_topic or '(none)'},
        'model': model_info,
        'accounting': accounting.summary(),
        'segmentation': _segmentation(scores, unscored),
        'latency': {**latency_summary(latencies),
                    'definition': 'engine time per frame in this process (preprocess, '
                                  'inference, postprocess)'},
        'throughput_fps': round(accounting.processed / wall_s, 3) if wall_s > 0 else None,
        'warnings': truth.warnings if truth else [],
    }
    _add_damage(report, reader.damage)
    return report, latencies, samples


def _add_damage(report: dict[str, Any], damage: BagDamage) -> None:
    """Put what reading the bag lost into the report (a section and a warning)."""
    if damage or damage.unchecked_files:
        report['bag_damage'] = damage.as_dict()
    if damage:
        report['warnings'] = [*report.get('warnings', []), damage.summary()]


def _names(class_set: ClassSet) -> list[str]:
    names = {c.id: c.name for c in class_set}
    return [names.get(i, f'id{i}') for i in range(class_set.num_outputs)]


def _segmentation(scores: SegmentationScores, unscored: int) -> dict[str, Any] | None:
    if scores.frames == 0:
        return None
    summary = scores.summary()
    summary['unscored_frames'] = unscored
    return summary


@dataclass
class RecordedInput:
    """An input frame: its stamp and when the recorder received it (None: not recorded)."""

    stamp_ns: int
    log_time_ns: int | None


def collect_by_stamp(reader: BagReader, topic: str) -> dict[int, deque]:
    """Return stamp -> deque of (log time ns, message) of every message on `topic`."""
    found: dict[int, deque] = defaultdict(deque)
    for message, msg in reader.decoded(topics=[topic]):
        found[stamp_ns(msg)].append((message.log_time_ns, msg))
    return found


def score_recorded(*, inputs: Sequence[RecordedInput], outputs: dict[int, deque],
                   truth: GroundTruth | None, class_set: ClassSet,
                   images_for: Callable[[Sequence[int]], dict[int, np.ndarray]] | None = None,
                   interrupted_after_ns: int | None = None) -> dict[str, Any]:
    """Score recorded labels against inputs (and ground truth); return the report's sections.

    A frame without labels is 'superseded' when a later frame got labels (the node keeps only
    the newest), 'interrupted' when it came after `interrupted_after_ns` (input log time) or was
    never played, else 'in_flight_at_stop'. Returned keys: accounting, segmentation, latency,
    throughput_fps, latencies_ms, samples, processed_stamps, warnings.
    """
    outputs = {stamp: deque(queue) for stamp, queue in outputs.items()}
    fate: list[tuple[RecordedInput, Any]] = []
    for frame in inputs:
        queue = outputs.get(frame.stamp_ns)
        fate.append((frame, queue.popleft() if queue else None))
    last_processed = max((i for i, (_, out) in enumerate(fate) if out is not None), default=-1)
    accounting = FrameAccounting()
    scores = SegmentationScores(num_classes=class_set.num_outputs, class_names=_names(class_set))
    latencies: list[float] = []
    output_times: list[int] = []
    processed_stamps: list[int] = []
    picked: list[tuple[int, np.ndarray | None, np.ndarray]] = []
    unscored = 0
    processed_count = sum(1 for _, out in fate if out is not None)
    sample_at = _pick_samples(processed_count)
    rank = 0
    for index, (frame, out) in enumerate(fate):
        if out is None:
            if interrupted_after_ns is not None and index > last_processed and (
                    frame.log_time_ns is None or frame.log_time_ns > interrupted_after_ns):
                reason = 'interrupted'
            elif index < last_processed:
                reason = 'superseded'
            else:
                reason = 'in_flight_at_stop'
            accounting.add_dropped(index, reason)
            continue
        log_ns, msg = out
        accounting.add_processed(index)
        processed_stamps.append(frame.stamp_ns)
        output_times.append(log_ns)
        if frame.log_time_ns is not None:
            latencies.append((log_ns - frame.log_time_ns) / 1e6)
        pred = np.array(image_to_numpy(msg))
        gt = truth.take(frame.stamp_ns, pred.shape) if truth else None
        if gt is not None:
            scores.update(gt, pred)
        else:
            unscored += 1
        if rank in sample_at:
            picked.append((frame.stamp_ns, gt, pred))
        rank += 1
    images = images_for([stamp for stamp, _, _ in picked]) if images_for and picked else {}
    samples: list[Sample] = [(f'stamp {stamp / 1e9:.3f}', images[stamp], gt, pred)
                             for stamp, gt, pred in picked if stamp in images]
    return {
        'accounting': accounting.summary(),
        'segmentation': _segmentation(scores, unscored),
        'latency': {**latency_summary(latencies), 'definition': LATENCY_DEFINITION},
        'throughput_fps': throughput_fps(output_times),
        'latencies_ms': latencies,
        'samples': samples,
        'processed_stamps': processed_stamps,
        'warnings': list(truth.warnings) if truth else [],
    }


def recorded_inputs(reader: BagReader, topic: str) -> list[RecordedInput]:
    """Return the stamps and receive times of every image recorded on `topic`, in log order."""
    return [RecordedInput(stamp_ns(msg), m.log_time_ns)
            for m, msg in reader.decoded(topics=[topic])]


def images_lookup(reader: BagReader, topic: str
                  ) -> Callable[[Sequence[int]], dict[int, np.ndarray]]:
    """Return a function: stamps -> {stamp: RGB image of `topic`} (one pass over the topic)."""
    def lookup(stamps: Sequence[int]) -> dict[int, np.ndarray]:
        wanted, found = set(stamps), {}
        for _, msg in reader.decoded(topics=[topic]):
            stamp = stamp_ns(msg)
            if stamp in wanted and stamp not in found:
                found[stamp] = np.array(as_rgb8(image_to_numpy(msg), msg.encoding))
                if len(found) == len(wanted):
                    break
        return found
    return lookup


#: topic of the trailing message of a replay bag (keeps the player alive while frames land)
PAD_TOPIC = '/seg_perception_eval/end_of_replay'


def write_replay_bag(source: BagReader, image_topic: str, dest: Path, *, pad_s: float) -> int:
    """Copy `image_topic` of `source` into a new bag `dest`, plus one message `pad_s` later.

    A player exits right after its last message, and DDS may then lose the last frames on
    their way to the node; the trailing std_msgs/Empty keeps it publishing until they landed.
    Returns the number of image messages copied.
    """
    from seg_perception.bag.writer import BagWriter
    count, last_ns = 0, 0
    with BagWriter(dest) as writer:
        writer.add_topic(image_topic, source.topics[image_topic].msgtype)
        for message in source.messages(topics=[image_topic]):
            writer.write_raw(image_topic, message.log_time_ns, message.rawdata)
            count, last_ns = count + 1, message.log_time_ns
        empty = writer.typestore.types['std_msgs/msg/Empty']()
        writer.write(PAD_TOPIC, last_ns + int(pad_s * 1e9), empty)
    return count


@dataclass
class OnlineRun:
    """Where an online run leaves its files."""

    out_dir: Path

    @property
    def recorded_bag(self) -> Path:
        return self.out_dir / 'recorded'

    @property
    def log_dir(self) -> Path:
        return self.out_dir / 'logs'

    @property
    def replay_bag(self) -> Path:
        return self.out_dir / 'replay'


def evaluate_bag_online(bag: str | Path, *, image_topic: str, gt_topic: str | None,
                        out_dir: str | Path, model: str = 'default', device: str = 'cpu',
                        rate: float = 1.0, ready_timeout_s: float = 120.0, drain_s: float = 3.0,
                        progress: bool = True, damage: BagDamage | None = None
                        ) -> tuple[dict[str, Any], list[float], list[Sample]]:
    """Replay `bag` through a real segmentation node, record its labels and score them.

    Writes the recorded bag and process logs under `out_dir`. Ctrl-C stops the nodes cleanly
    (the recorded bag is finalised) and returns a partial report.
    """
    from seg_perception.process_group import ProcessGroup
    run = OnlineRun(Path(out_dir))
    source = open_bag(bag, [image_topic, gt_topic], damage)
    damage = source.damage
    labels_topic = labels_topic_for(image_topic)
    if labels_topic in source.topics:
        source.close()
        raise EvaluationInputError(f'bag {str(bag)!r} already has {labels_topic}; replaying it '
                                   'would mix old and new labels')
    if run.recorded_bag.exists():
        source.close()
        raise EvaluationInputError(f'{run.recorded_bag} exists already; choose another --out')
    class_set = model_class_set(model)
    source_inputs = [RecordedInput(stamp_ns(msg), None)
                     for _, msg in source.decoded(topics=[image_topic])]
    if run.replay_bag.exists():
        shutil.rmtree(run.replay_bag)
    write_replay_bag(source, image_topic, run.replay_bag, pad_s=drain_s * rate)
    span_s = source.duration_ns * 1e-9 / rate + drain_s
    partial = False
    interrupted_after: int | None = None
    group = ProcessGroup(log_dir=run.log_dir)
    started = time.monotonic()
    try:
        try:
            group.start('segmentation_node', SEGMENTATION_NODE, params={
                'image_topics': [image_topic], 'model': model, 'device': device,
                'precision': 'fp32', 'warmup_iterations': 1, 'qos_reliability': 'reliable'})
            group.wait_ready('segmentation_node', "model '", ready_timeout_s)
            group.start('bag_recorder', BAG_RECORDER, args=[
                image_topic, labels_topic, '-o', str(run.recorded_bag), '--timeout',
                str(ready_timeout_s)])
            player = group.start('bag_player', BAG_PLAYER, args=[
                str(run.replay_bag), '--rate', str(rate), '--wait-for-subscribers', '2',
                '--wait-topics', image_topic, '--wait-timeout', str(ready_timeout_s), '--delay',
                '0.5', '--no-progress'])
            group.wait_ready('bag_recorder', 'recording', ready_timeout_s)
            bar = _progress(len(source_inputs), f'online {Path(bag).name}', progress)
            try:
                deadline = time.monotonic() + span_s + 60.0 + 3.0
                while player.is_running():
                    group.check_running(['segmentation_node', 'bag_recorder'])
                    if time.monotonic() > deadline:
                        raise EvaluationInputError(f'replay did not end within {span_s + 60:.0f}'
                                                   ' s')
                    time.sleep(0.1)
                    bar.n = min(len(source_inputs), int(len(source_inputs) * min(
                        1.0, (time.monotonic() - started) / max(span_s + 3.0, 1e-3))))
                    bar.refresh()
                if player.returncode != 0:
                    raise EvaluationInputError(f'bag_player failed: {player.tail()}')
                bar.n = len(source_inputs)
                bar.refresh()
            finally:
                bar.close()
            time.sleep(1.0)  # the trailing pad message gave the node drain_s already
        except KeyboardInterrupt:
            partial = True
            interrupted_after = time.time_ns()
        group.stop(['bag_player', 'segmentation_node', 'bag_recorder'])
    finally:
        group.stop()
        source.close()
        shutil.rmtree(run.replay_bag, ignore_errors=True)
    wall_s = time.monotonic() - started
    report, latencies, samples = _score_online_run(
        bag, run, image_topic=image_topic, gt_topic=gt_topic, labels_topic=labels_topic,
        class_set=class_set, interrupted_after=interrupted_after, damage=damage)
    _add_damage(report, damage)
    report.update({
        'title': f'Online evaluation of {model} on {Path(bag).name}',
        'partial': partial,
        'model': {'name': model, 'device': device},
        'source': {'bag': str(bag), 'image_topic': image_topic,
                   'gt_topic': gt_topic or '(none)', 'rate': rate},
    })
    report.setdefault('details', {})['wall_s'] = round(wall_s, 2)
    return report, latencies, samples


def _score_online_run(bag: str | Path, run: OnlineRun, *, image_topic: str,
                      gt_topic: str | None, labels_topic: str, class_set: ClassSet,
                      interrupted_after: int | None, damage: BagDamage
                      ) -> tuple[dict[str, Any], list[float], list[Sample]]:
    """Score an online run: frames in = the source bag's images; labels from the recording."""
    notes = []
    with BagReader(bag, damage=damage) as source:
        truth = GroundTruth.from_bag(source, gt_topic) if gt_topic else None
        stamps = [stamp_ns(msg) for _, msg in source.decoded(topics=[image_topic])]
        if not (run.recorded_bag / 'metadata.yaml').is_file():
            inputs = [RecordedInput(s, None) for s in stamps]
            notes.append('the recorder wrote no bag (stopped before it subscribed)')
            recorded_times: dict[int, deque] = {}
            labels_reader = None
        else:
            labels_reader = BagReader(run.recorded_bag, damage=damage)
            recorded_times = defaultdict(deque)
            if image_topic in labels_reader.topics:
                for item in recorded_inputs(labels_reader, image_topic):
                    recorded_times[item.stamp_ns].append(item.log_time_ns)
            inputs = []
            for s in stamps:
                queue = recorded_times.get(s)
                inputs.append(RecordedInput(s, queue.popleft() if queue else None))
        try:
            if labels_reader is None or labels_topic not in labels_reader.topics:
                accounting = FrameAccounting()
                for i in range(len(inputs)):
                    accounting.add_dropped(i, 'interrupted' if interrupted_after
                                           else 'in_flight_at_stop')
                scored = {'accounting': accounting.summary(), 'segmentation': None,
                          'latency': latency_summary([]), 'throughput_fps': None,
                          'latencies_ms': [], 'samples': [], 'warnings': []}
            else:
                scored = score_recorded(
                    inputs=inputs, outputs=collect_by_stamp(labels_reader, labels_topic),
                    truth=truth, class_set=class_set,
                    images_for=images_lookup(source, image_topic),
                    interrupted_after_ns=interrupted_after)
        finally:
            if labels_reader is not None:
                labels_reader.close()
    report = {
        'mode': 'online',
        'accounting': scored['accounting'],
        'segmentation': scored['segmentation'],
        'latency': scored['latency'],
        'throughput_fps': scored['throughput_fps'],
        'warnings': scored['warnings'],
        'notes': notes + [f'recorded bag: {run.recorded_bag}', f'node logs: {run.log_dir}'],
    }
    if not gt_topic:
        report['notes'].append('no ground-truth topic: throughput and latency only')
    return report, scored['latencies_ms'], scored['samples']


# --- command line (`seg_perception evaluate --mode bag|online`) -----------------------------
BAG_MODES = ('bag', 'online')
DEFAULT_IMAGE_TOPIC = '/camera/color/image_raw'


def add_bag_arguments(parser: Any) -> None:
    """Add the options of the bag (offline) and online modes."""
    g = parser.add_argument_group('bag and online modes')
    g.add_argument('--bag', type=Path, help='rosbag2 folder (or .mcap file) to evaluate on')
    g.add_argument('--image-topic', default=DEFAULT_IMAGE_TOPIC, help='input image topic')
    g.add_argument('--gt-topic', default='',
                   help="ground-truth label topic (mono8 class ids); '' = none: online mode "
                        'then reports throughput and latency only')
    g.add_argument('--rate', type=float, default=1.0, help='online: replay speed factor')
    g.add_argument('--max-frames', type=int, default=0, help='bag mode: stop after N (0 = all)')
    g.add_argument('--drain', type=float, default=3.0, metavar='SECONDS',
                   help='online: time the node gets after the last frame')
    g.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    g.add_argument('--allow-corrupt', action='store_true',
                   help='exit 0 when corrupt bag chunks or undecodable messages were skipped '
                        '(still reported)')


def run_bag(args: Any) -> int:
    """Run the bag or online mode, write the report folder; return 0, or 130 if interrupted."""
    from seg_perception.cli import CliError
    from seg_perception.evaluation.report import write_report
    from seg_perception.process_group import ProcessError
    from seg_perception.stop_signals import StopSignals
    if args.bag is None:
        raise CliError(f'--mode {args.mode} needs --bag PATH')
    out = Path(args.out)
    if out == Path('build/eval/synthetic'):  # the synthetic mode's default folder
        out = Path('build/eval') / f'{args.mode}-{args.bag.name}'
    device = 'cuda' if args.device == 'auto' and _cuda() else \
        ('cpu' if args.device == 'auto' else args.device)
    gt_topic = args.gt_topic or None
    damage = BagDamage(on_report=lambda line: print(f'evaluate: {line}', file=sys.stderr))
    try:
        if args.mode == 'online':
            if not args.rate > 0 or args.drain < 0:
                raise CliError(f'--rate must be > 0 and --drain >= 0, got {args.rate}, '
                               f'{args.drain}')
            report, latencies, samples = evaluate_bag_online(
                args.bag, image_topic=args.image_topic, gt_topic=gt_topic, out_dir=out,
                model=args.model, device=device, rate=args.rate, drain_s=args.drain,
                progress=not args.no_progress, damage=damage)
        else:
            with StopSignals() as stop:  # Ctrl-C ends the run between frames, books balanced
                report, latencies, samples = evaluate_bag_offline(
                    args.bag, image_topic=args.image_topic, gt_topic=gt_topic,
                    model=args.model, device=device, max_frames=args.max_frames,
                    progress=not args.no_progress, should_stop=stop.is_set, damage=damage)
    except ProcessError as exc:
        raise CliError(str(exc)) from exc
    files = write_report(out, report, latencies_ms=latencies, samples=samples)
    acc, lat = report['accounting'], report['latency']
    seg = report.get('segmentation') or {}
    reasons = ', '.join(f'{k} {v}' for k, v in acc['dropped_by_reason'].items()) or 'none'
    print(f'{"PARTIAL (interrupted) " if report.get("partial") else ""}{args.mode} evaluation '
          f'of {args.model} on {args.bag}')
    print(f'frames: in {acc["frames_in"]}, processed {acc["frames_processed"]}, dropped '
          f'{acc["frames_dropped"]} ({reasons})')
    if seg:
        print(f'mIoU {seg["miou"]:.4f}, pixel accuracy {seg["pixel_accuracy"]:.4f} over '
              f'{seg["frames"]} frames')
    else:
        print('no ground truth: throughput and latency only')
    fps = report.get('throughput_fps')
    if lat.get('count'):
        print(f'latency p50 {lat["p50_ms"]:.1f} ms, p95 {lat["p95_ms"]:.1f} ms, p99 '
              f'{lat["p99_ms"]:.1f} ms; {fps if fps is not None else "n/a"} frames/s')
    for warning in report.get('warnings', []):
        print(f'warning: {warning}')
    print(f'wrote {files["markdown"]} (+ report.json, plots)')
    closing = damage.exit_line(args.allow_corrupt)
    if closing:
        print(f'evaluate: {closing}', file=sys.stderr)
    if report.get('partial'):
        return 130
    return 1 if damage and not args.allow_corrupt else 0


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()
