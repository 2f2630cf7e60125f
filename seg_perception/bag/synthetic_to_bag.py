"""`seg_perception bag write-synthetic`: write synthetic cell frames with ground truth to a bag.

Per frame, one stamp on every topic under the namespace: color/image_raw (rgb8),
depth/image_rect (32FC1 metres, registered to colour), color/camera_info, depth/camera_info,
ground_truth/labels (mono8 class ids) and ground_truth/instances (16UC1 instance ids).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_perception.bag.messages import camera_info_message, image_message
from seg_perception.bag.reader import BagError, default_typestore
from seg_perception.bag.writer import BagWriter
from seg_perception.conversions.encodings import MONO8, RGB8, TYPE_16UC1, TYPE_32FC1

#: first stamp of a synthetic bag (2024-01-01T00:00:00Z), fixed so that bags are reproducible
DEFAULT_START_NS = 1_704_067_200 * 1_000_000_000
OPTICAL_FRAME = 'camera_color_optical_frame'


def topic_names(namespace: str) -> dict[str, str]:
    """Return role -> topic name under `namespace` ('camera' -> '/camera/color/image_raw')."""
    prefix = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return {role: f'{prefix}/{suffix}' for role, suffix in (
        ('rgb', 'color/image_raw'), ('depth', 'depth/image_rect'),
        ('color_info', 'color/camera_info'), ('depth_info', 'depth/camera_info'),
        ('labels', 'ground_truth/labels'), ('instances', 'ground_truth/instances'))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this subcommand's options."""
    parser.add_argument('--out', type=Path, required=True, help='bag folder to create')
    parser.add_argument('--frames', type=int, default=30, help='number of frames (default 30)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first frame (default 0)')
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second (default 10)')
    parser.add_argument('--ns', default='camera', help="topic namespace (default 'camera')")
    parser.add_argument('--width', type=int, default=640, help='image width (default 640)')
    parser.add_argument('--height', type=int, default=480, help='image height (default 480)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--style', default='default',
                        help='synthetic cell style (seg_perception.adaptation.styles: default, '
                             'light_diffuse, dark_hard)')


def write_synthetic_bag(out: Path, *, frames: int, seed: int, rate_hz: float,
                        namespace: str = 'camera', width: int = 640, height: int = 480,
                        storage: str = 'mcap', start_ns: int = DEFAULT_START_NS,
                        progress: bool = True, style: str = 'default') -> int:
    """Render `frames` frames (seeds seed, seed+1, ...) into a new bag; return messages written."""
    if frames < 1:
        raise BagError(f'--frames must be >= 1, got {frames}')
    if not rate_hz > 0:
        raise BagError(f'--rate must be > 0 Hz, got {rate_hz}')
    from tqdm import tqdm

    from seg_perception.synthetic import SyntheticCell, SyntheticConfig

    cell = SyntheticCell(SyntheticConfig(width=width, height=height))
    if style != 'default':      # another cell: seg_perception.adaptation.styles
        from seg_perception.adaptation.styles import get_style, StyleError, StyledCell
        try:
            cell = StyledCell(get_style(style), width=width, height=height)
        except StyleError as exc:
            raise BagError(str(exc)) from exc
    typestore = default_typestore()
    topics = topic_names(namespace)
    period_ns = int(round(1e9 / rate_hz))
    with BagWriter(out, typestore=typestore, storage=storage) as writer:
        for index in tqdm(range(frames), desc=f'writing {out}', unit='frame',
                          disable=not progress):
            frame = cell.render(seed=seed + index)
            stamp_ns = start_ns + index * period_ns
            messages = {
                'rgb': image_message(typestore, frame.rgb, RGB8, stamp_ns, OPTICAL_FRAME),
                'depth': image_message(typestore, frame.depth_m, TYPE_32FC1, stamp_ns,
                                       OPTICAL_FRAME),
                'labels': image_message(typestore, frame.labels, MONO8, stamp_ns,
                                        OPTICAL_FRAME),
                'instances': image_message(typestore, frame.instances, TYPE_16UC1, stamp_ns,
                                           OPTICAL_FRAME),
            }
            height_px, width_px = frame.labels.shape
            for role in ('color_info', 'depth_info'):
                messages[role] = camera_info_message(typestore, frame.K, width_px, height_px,
                                                     stamp_ns, OPTICAL_FRAME)
            for role, message in messages.items():
                writer.write(topics[role], stamp_ns, message)
        return writer.message_count


def main(args: argparse.Namespace) -> int:
    """Write the bag and print a one-line summary."""
    count = write_synthetic_bag(args.out, frames=args.frames, seed=args.seed, rate_hz=args.rate,
                                namespace=args.ns, width=args.width, height=args.height,
                                storage=args.storage, progress=not args.no_progress,
                                style=args.style)
    print(f'wrote {count} messages ({args.frames} frames) to {args.out}')
    return 0
