"""Command line: a preview grid, a dataset or a scenario video.

Examples::

    python -m kit.synthetic --use-case ppe --preview /tmp/ppe.png
    python -m kit.synthetic --use-case ppe --out /tmp/ppe_data --n 100
    python -m kit.synthetic --use-case shelf,fish,ppe --out /tmp/all --n 300
    python -m kit.synthetic --scenario helmet_off --out /tmp/helmet.mp4 --seconds 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from kit.synthetic.core import USE_CASES
from kit.synthetic.dataset import make_dataset
from kit.synthetic.preview import preview_grid
from kit.synthetic.video import SCENARIOS, write_scenario_video


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from None
    return width, height


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"splits must look like 0.8,0.2,0, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kit.synthetic", description=__doc__.splitlines()[0]
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--use-case", help=f"one of {sorted(USE_CASES)}, or several joined by commas")
    what.add_argument(
        "--scenario", choices=sorted(SCENARIOS), help="write a scenario video to --out"
    )
    parser.add_argument("--out", type=Path, help="dataset folder, or video file (.mp4/.avi)")
    parser.add_argument("--preview", type=Path, help="write a preview grid PNG of the use case")
    parser.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)"
    )
    parser.add_argument("--splits", type=_fractions, default=(0.8, 0.2, 0.0), help="train,val,test")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument("--seconds", type=float, default=10.0, help="video duration")
    parser.add_argument("--fps", type=float, default=15.0, help="video frame rate")
    args = parser.parse_args(argv)

    try:
        if args.scenario:
            if args.out is None:
                parser.error("--scenario needs --out VIDEO.mp4")
            info = write_scenario_video(
                args.scenario, args.out, args.seconds, args.fps, args.size, args.seed
            )
            print(
                f"wrote {info.video_path} ({info.frame_count} frames) and {Path(info.video_path).with_suffix('.json')}"
            )
            return 0
        use_cases = args.use_case.split(",")
        if args.preview:
            if len(use_cases) != 1:
                parser.error("--preview takes a single use case")
            grid = preview_grid(use_cases[0], seeds=range(args.seed, args.seed + 6), size=args.size)
            args.preview.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.preview), grid)
            print(f"wrote {args.preview}")
            return 0
        if args.out is None:
            parser.error("--use-case needs --out DIR (a dataset) or --preview PNG")
        data_yaml = make_dataset(
            use_cases if len(use_cases) > 1 else use_cases[0],
            args.out,
            n_images=args.n,
            seed=args.seed,
            size=args.size,
            splits=args.splits,
            overwrite=args.overwrite,
        )
        print(f"wrote {data_yaml}")
        return 0
    except (ValueError, FileExistsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
