"""Fixtures for the edge app: a small YOLO detector trained here, exported to ONNX and OpenVINO.

The model is a YOLOv8n built from ``yolov8n.yaml`` (no downloaded weights) and trained for a few
epochs on generated scenes: coloured boxes, balls and cones on noise. It is trained once per
test session (about 35 s on two cores) and really detects its three classes, so detector
parity with ultralytics is checked on real boxes rather than on noise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

CLASS_NAMES = {0: "box", 1: "ball", 2: "cone"}
COLORS = {0: (0, 0, 230), 1: (0, 200, 0), 2: (230, 0, 0)}
IMGSZ = 160


def draw_scene(rng: np.random.Generator, width: int = 320, height: int = 240):
    """A noisy frame with 1-4 objects; returns the image and YOLO labels (class, cx, cy, w, h)."""
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    labels = []
    for _ in range(int(rng.integers(1, 5))):
        class_id = int(rng.integers(0, 3))
        box_w, box_h = (int(v) for v in rng.integers(30, 90, 2))
        x1, y1 = int(rng.integers(0, width - box_w)), int(rng.integers(0, height - box_h))
        if class_id == 0:
            cv2.rectangle(image, (x1, y1), (x1 + box_w, y1 + box_h), COLORS[0], cv2.FILLED)
        elif class_id == 1:
            center = (x1 + box_w // 2, y1 + box_h // 2)
            cv2.ellipse(image, center, (box_w // 2, box_h // 2), 0, 0, 360, COLORS[1], cv2.FILLED)
        else:
            triangle = np.array([[x1 + box_w // 2, y1], [x1, y1 + box_h], [x1 + box_w, y1 + box_h]])
            cv2.fillPoly(image, [triangle], COLORS[2])
        labels.append(
            (
                class_id,
                (x1 + box_w / 2) / width,
                (y1 + box_h / 2) / height,
                box_w / width,
                box_h / height,
            )
        )
    return image, labels


def write_dataset(root: Path, train: int, val: int, seed: int = 0) -> Path:
    """A YOLO dataset of generated scenes; returns its data.yaml (absolute paths)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, labels = draw_scene(rng)
            cv2.imwrite(str(root / "images" / split / f"{index:04d}.png"), image)
            (root / "labels" / split / f"{index:04d}.txt").write_text(
                "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)
            )
    names = "".join(f"  {k}: {v}\n" for k, v in CLASS_NAMES.items())
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return data_yaml


@dataclass(frozen=True)
class TrainedModel:
    """The session's detector and the frames to test it on."""

    weights: Path
    onnx: Path
    frames: list[np.ndarray]
    class_names: dict[int, str]
    imgsz: int

    def export(self, name: str, **options) -> Path:
        """Another export of the same weights, as ``<name>.onnx``, ``<name>_openvino_model``...

        Exports are named after the weights file, so each name gets its own copy of it and
        exports never overwrite each other.
        """
        from ultralytics import YOLO

        weights = self.weights.with_name(f"{name}.pt")
        if not weights.exists():
            shutil.copyfile(self.weights, weights)
        return Path(YOLO(str(weights)).export(**options))


def _ultralytics_yolo():
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    return YOLO


@pytest.fixture(scope="session")
def yolo():
    """ultralytics' ``YOLO`` class, imported offline."""
    return _ultralytics_yolo()


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> TrainedModel:
    """YOLOv8n trained on generated scenes at 160 px, exported to ONNX (metadata included)."""
    YOLO = _ultralytics_yolo()
    root = tmp_path_factory.mktemp("vision-model")
    data_yaml = write_dataset(root / "data", train=128, val=8)
    model = YOLO("yolov8n.yaml")
    # nbs=batch makes every batch an optimizer step (the default nbs=64 would accumulate 16
    # batches of 4): BatchNorm's running statistics (momentum 0.03) need a few hundred steps
    # to forget their initial values, and with too few the eval-mode model outputs nothing.
    model.train(
        data=str(data_yaml), epochs=6, imgsz=IMGSZ, batch=4, nbs=4, optimizer="SGD", lr0=0.01,
        warmup_epochs=0, mosaic=0.0, close_mosaic=0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0,
        translate=0.1, scale=0.2, fliplr=0.5, amp=False, device="cpu", workers=0, seed=0,
        deterministic=True, val=False, plots=False, verbose=False,
        project=str(root / "runs"), name="train", exist_ok=True,
    )  # fmt: skip
    weights = root / "runs" / "train" / "weights" / "best.pt"
    onnx = Path(YOLO(str(weights)).export(format="onnx", imgsz=IMGSZ, simplify=False))
    rng = np.random.default_rng(1)
    scenes = [draw_scene(rng)[0] for _ in range(12)]
    # Other sizes and aspect ratios exercise the letterbox (padding on either axis, upscaling).
    frames = scenes + [
        cv2.resize(scenes[0], (517, 301)),
        cv2.resize(scenes[1], (97, 403)),
        np.ascontiguousarray(scenes[2][:, :150]),
        cv2.resize(scenes[3], (640, 480)),
    ]
    return TrainedModel(
        weights=weights, onnx=onnx, frames=frames, class_names=CLASS_NAMES, imgsz=IMGSZ
    )


@pytest.fixture(scope="session")
def openvino_model(trained_model) -> Path:
    """The same weights exported to OpenVINO (``*_openvino_model`` directory)."""
    pytest.importorskip("openvino", reason="openvino is not installed: OpenVINO backend untested")
    return trained_model.export("best", format="openvino", imgsz=IMGSZ)


@pytest.fixture
def small_disk(tmp_path):
    """Make :class:`tests.edge_app.small_disk.SmallDisk` tmpfs mounts (``size_bytes``,
    ``read_only``) under ``tmp_path``; each is unmounted after the test."""
    from tests.edge_app.small_disk import SmallDisk

    made: list[SmallDisk] = []

    def make(size_bytes: int, *, read_only: bool = False, name: str = "disk") -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size_bytes, read_only=read_only)
        made.append(disk)
        return disk

    yield make
    for disk in made:
        disk.close()
