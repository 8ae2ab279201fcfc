"""The ``kit data`` commands: import labelled images, list and pull the samples devices took.

Wire them into ``kit.cli.build_parser`` with :func:`add_commands` (each parser sets
``run=<function(settings, args) -> exit code>``, as the other kit commands do)::

    kit data import photos/ --labels export.json --format coco --name shelf
    kit data samples list [--device demo-1] [--camera shelf-1] [--since 24h] [--json]
    kit data samples pull --name shelf [--device demo-1] [--camera shelf-1] [--since 7d]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kit.core.settings import Settings
from kit.data.samples import SINCE_HELP, list_samples, pull_samples

LABEL_FORMAT_CHOICES = ("coco", "voc", "labelstudio", "groundtruth", "yolo")
"""What ``kit data import --format`` takes (Label Studio and Ground Truth without the ``_`` the
notebook's ``labels_format`` has; either spelling works)."""


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from kit.data import check_dataset, split_dataset, upload_dataset
    from kit.notebook import load_labelled_images

    fmt = {"labelstudio": "label_studio", "groundtruth": "ground_truth"}.get(
        args.format, args.format
    )
    # absolute: a relative path on the command line means the working folder
    dataset = load_labelled_images(Path(args.images).resolve(), Path(args.labels).resolve(), fmt)
    if not len(dataset):
        raise ValueError(f"{args.labels} labels no image of {args.images}")
    report = check_dataset(dataset)
    print(report)
    splits = split_dataset(dataset, ratios=_ratios(args.split), seed=args.seed)
    prefix = upload_dataset(
        splits,
        s3_client=settings.client("s3"),
        bucket=settings.resources.bucket,
        name=args.name,
    )
    print(
        f"uploaded {len(dataset)} images ({len(splits.train)} train, {len(splits.val)} val, "
        f"{len(splits.test)} test) of classes {', '.join(dataset.classes)} as "
        f"s3://{settings.resources.bucket}/{prefix}"
    )
    return 0


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"--split {text!r} is not 2 or 3 comma-separated fractions (train,val[,test]) summing "
            "to 1, e.g. 0.8,0.2"
        ) from None


def _samples(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        samples = list_samples(settings, device=args.device, camera=args.camera, since=args.since)
        if args.json:
            print(json.dumps([s.record.model_dump(mode="json") for s in samples], indent=2))
            return 0
        for sample in samples:
            record = sample.record
            print(
                f"{record.captured_at.isoformat(timespec='milliseconds')}  "
                f"{record.device_id}/{record.camera_id}  {record.sample_id}  "
                f"{','.join(record.reasons)}  {record.model.name}:{record.model.version}  "
                f"{len(record.detections)} box(es)  {record.image_key}"
            )
        print(f"{len(samples)} sample(s)")
        return 0
    if not args.name:
        raise ValueError("data samples pull needs --name DATASET: the dataset to add a version to")
    pulled = pull_samples(
        settings,
        name=args.name,
        device=args.device,
        camera=args.camera,
        since=args.since,
        merge=args.merge,
        work_dir=args.out,
    )
    merged = f" merged into {args.name}:{pulled.base}" if pulled.base else ""
    skipped = f" ({pulled.skipped} already in {pulled.base})" if pulled.skipped else ""
    print(
        f"pulled {len(pulled.samples)} sample(s){skipped}{merged} as {args.name}:"
        f"{pulled.version} (s3://{settings.resources.bucket}/{pulled.prefix}); the labels are "
        "the models' own pre-labels: review them (notebook 01) before training on them"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``data`` (``import``, ``samples list|pull``) to the kit's subcommands."""
    data = commands.add_parser(
        "data", help="datasets: import labelled images; samples devices took for labelling"
    )
    actions = data.add_subparsers(dest="data_command", required=True)

    imported = actions.add_parser(
        "import",
        help="import labelled images (COCO, VOC, Label Studio, Ground Truth, YOLO) as the next "
        "version of a dataset",
    )
    imported.add_argument("images", help="the folder of images")
    imported.add_argument(
        "--labels",
        required=True,
        help="the labels: a COCO json, a folder of VOC xml, a Label Studio json, a Ground Truth "
        "manifest, or a YOLO data.yaml (or a folder of YOLO label files with a classes.txt)",
    )
    imported.add_argument(
        "--format", required=True, choices=LABEL_FORMAT_CHOICES, help="the labels' format"
    )
    imported.add_argument("--name", required=True, help="the dataset (datasets/<name>/)")
    imported.add_argument(
        "--split",
        default="0.8,0.2",
        help="train,val[,test] fractions (default 0.8,0.2); the same images always land alike",
    )
    imported.add_argument("--seed", type=int, default=0, help="changes the split (default 0)")
    imported.set_defaults(run=_import)

    samples = actions.add_parser(
        "samples", help="frames devices sampled for labelling (samples/<device>/<camera>/...)"
    )
    samples.add_argument(
        "action",
        choices=["list", "pull"],
        help="list: the samples, oldest first; pull: add them with their pre-labels to the next "
        "version of --name (merged into the newest version's training split)",
    )
    samples.add_argument("--device", help="only this device's samples")
    samples.add_argument("--camera", help="only this camera's samples (with --device)")
    samples.add_argument("--since", help=f"only samples captured since: {SINCE_HELP}")
    samples.add_argument("--json", action="store_true", help="list: print the records as JSON")
    samples.add_argument("--name", help="pull: the dataset (datasets/<name>/)")
    samples.add_argument(
        "--merge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pull: add the samples to the newest version's data (default), or make a version "
        "of the samples alone (--no-merge)",
    )
    samples.add_argument("--out", help="pull: keep the downloaded files in this folder")
    samples.set_defaults(run=_samples)
