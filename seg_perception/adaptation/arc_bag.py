"""Write the real ARC 2017 tote frames (../shared/data) into a rosbag2 for `adapt`.

Frame 0 is the empty tote, frame 1 the full one (colour rgb8, depth 32FC1 metres registered to
the colour, CameraInfo from the intrinsics file). These frames are for evaluation only: the bag
exists to show that `adapt` runs on real data end to end (and says that two frames are too few),
never to train on.

  python -m seg_perception.adaptation.arc_bag --data ../shared/data --out build/real/arc_tote_bag
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

from seg_perception.bag.messages import camera_info_message, image_message
from seg_perception.bag.reader import default_typestore
from seg_perception.bag.synthetic_to_bag import DEFAULT_START_NS, OPTICAL_FRAME, topic_names
from seg_perception.bag.writer import BagWriter
from seg_perception.conversions.encodings import RGB8, TYPE_32FC1
from seg_perception.evaluation.arc2017 import FRAMES, load_depth


def write_arc_tote_bag(data: Path, out: Path) -> int:
    """Write the empty and the full ARC tote as two frames; return the messages written."""
    folder, colour, depth, empty, intrinsics, _ = FRAMES['tote']
    root = Path(data) / folder
    if not root.is_dir():
        raise FileNotFoundError(f'{root} does not exist')
    K = np.loadtxt(root / intrinsics).reshape(3, 3)
    bgr = cv2.imread(str(root / colour), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read {root / colour}')
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    empty_bgr = cv2.imread(str(root / colour.replace('image', 'background')), cv2.IMREAD_COLOR)
    empty_rgb = rgb if empty_bgr is None else cv2.cvtColor(empty_bgr, cv2.COLOR_BGR2RGB)
    frames = [(empty_rgb, load_depth(root / empty)), (rgb, load_depth(root / depth))]
    typestore = default_typestore()
    topics = topic_names('camera')
    with BagWriter(out, typestore=typestore) as writer:
        for index, (image, depth_m) in enumerate(frames):
            stamp = DEFAULT_START_NS + index * 100_000_000
            height, width = depth_m.shape
            writer.write(topics['rgb'], stamp, image_message(typestore, image, RGB8, stamp,
                                                             OPTICAL_FRAME))
            writer.write(topics['depth'], stamp, image_message(
                typestore, np.nan_to_num(depth_m, nan=0.0).astype(np.float32), TYPE_32FC1,
                stamp, OPTICAL_FRAME))
            writer.write(topics['color_info'], stamp, camera_info_message(
                typestore, K, width, height, stamp, OPTICAL_FRAME))
        return writer.message_count


def main(argv: list[str] | None = None) -> int:
    """Write the bag; print a one-line summary or a one-line error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=Path('../shared/data'))
    parser.add_argument('--out', type=Path, default=Path('build/real/arc_tote_bag'))
    args = parser.parse_args(argv)
    try:
        count = write_arc_tote_bag(args.data, args.out)
    except (OSError, ValueError) as exc:
        sys.exit(f'arc_bag: error: {exc}')   # one line on stderr, exit status 1
    print(f'wrote {count} messages (2 frames: empty tote, full tote) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
