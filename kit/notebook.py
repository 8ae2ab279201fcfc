"""Small helpers that keep the numbered notebooks to a few lines a cell.

Examples:
    >>> from kit.notebook import setup, show
    >>> settings = setup("local")          # doctest: +SKIP
    >>> show(image_bgr, title="a scene")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kit.core.contracts import DetectionPayload
from kit.core.settings import Settings, find_project_root, load_settings
from kit.data.fetch import fetch_dataset as fetch_dataset  # the notebooks import both from here
from kit.data.fetch import latest_dataset as latest_dataset
from kit.offline import configure_ultralytics

if TYPE_CHECKING:
    from kit.compile.speed import ExportSpeed
    from kit.dashboard import ControlApiClient
    from kit.data import DetectionDataset, LabellingSession
    from kit.local.runner import AlertNotice

PROJECT_ROOT = (
    find_project_root(Path(__file__).resolve().parent) or Path(__file__).resolve().parents[1]
)
"""The repository's root: relative notebook paths (``work_dir``, ``images_dir`` ...) start here,
whatever folder the kernel was started in."""

DEMO_PREFIX = "nb-demo-"
"""What the ids of the devices and cameras the notebooks create start with, so that they are
recognisably demo artefacts (and removed at the end of the notebook that made them)."""

LABEL_FORMATS = ("coco", "voc", "label_studio", "ground_truth", "yolo")
"""The ``labels_format`` values notebook 1 imports."""

SPOOL_BYTES = 16 * 1024 * 1024
"""Room for what :func:`publish_payload` sends: a payload (and its frame) at a time."""

log = logging.getLogger(__name__)


class NotebookStop(RuntimeError):
    """A notebook cannot go on as its parameters and settings stand; the message says what to do.

    Jupyter shows it as its one-line message, without a traceback: the reader has nothing to
    debug, only a step to take first.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def setup(target: str = "local", *, start_local: bool = True, **overrides: Any) -> Settings:
    """Settings for a notebook: offline ultralytics, the target, and (local) a running stack.

    On the local target the local stack (moto + Lambda runner) is started unless it runs already,
    so every notebook can be run on its own, in any order. On aws the settings must hold the
    deployed stack's outputs (``kit aws outputs`` writes them), so that nothing is read from or
    written to a bucket or table the customer does not own.

    Raises:
        NotebookStop: target aws without the stack's outputs in the settings.
    """
    settings = load_settings(target=target, **overrides)
    if settings.target == "aws":
        from kit.aws import missing_stack_settings

        missing = missing_stack_settings(settings)
        if missing:
            origin = settings.config_file or "the settings"
            raise NotebookStop(
                f"target aws: {origin} has no stack outputs ({', '.join(missing)}): "
                "run 05 / `kit aws outputs` first"
            )
    # ultralytics logs at import (a new settings file) and per call: noise between a notebook's
    # own tables and pictures; the kit reports what matters itself
    os.environ.setdefault("YOLO_VERBOSE", "False")
    configure_ultralytics()
    logging.basicConfig(level=logging.WARNING)
    # torch's export path warns about its own deprecations on every ONNX export: noise to a reader
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")
    if target == "local" and start_local:
        from kit.local import LocalStack

        status = LocalStack(settings).up()
        print(f"local stack: {status.endpoint_url} (control API {settings.control_api_url()})")
    else:
        print(
            f"target {settings.target}: region {settings.region}, bucket {settings.resources.bucket}"
        )
    return settings


def project_path(path: str | Path) -> Path:
    """``path`` made absolute: a relative one is taken from the project root, not the cwd.

    Examples:
        >>> project_path(".evk/notebooks") == PROJECT_ROOT / ".evk" / "notebooks"
        True
    """
    path = Path(path).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def load_labelled_images(
    images_dir: str | Path, labels: str | Path, labels_format: str
) -> DetectionDataset:
    """A customer's labelled images as one dataset, whatever tool labelled them.

    Args:
        images_dir: the folder of images (relative: from the project root).
        labels: the labels export: a COCO json, a Label Studio json, a Ground Truth manifest, a
            folder of VOC xml files, or a YOLO ``data.yaml`` (or a folder of YOLO label files,
            whose classes then come from a ``classes.txt`` next to them).
        labels_format: one of :data:`LABEL_FORMATS`.

    Raises:
        ValueError: an unknown ``labels_format``.
        FileNotFoundError: ``images_dir`` or ``labels`` does not exist.
        DatasetFormatError: the labels are malformed (the error names the file and entry).
    """
    from kit.data import DetectionDataset

    images, labels_path = project_path(images_dir), project_path(labels)
    for what, path in (("images_dir", images), ("labels", labels_path)):
        if not path.exists():
            raise FileNotFoundError(f"{what} {path} does not exist")
    fmt = labels_format.lower().replace(" ", "_").replace("-", "_")
    if fmt == "coco":
        return DetectionDataset.from_coco(annotations_path=labels_path, images_dir=images)
    if fmt == "voc":
        return DetectionDataset.from_voc(annotations_dir=labels_path, images_dir=images)
    if fmt == "label_studio":
        return DetectionDataset.from_label_studio(json_path=labels_path, images_dir=images)
    if fmt == "ground_truth":
        return DetectionDataset.from_ground_truth_manifest(
            manifest_path=labels_path, images_dir=images
        )
    if fmt == "yolo":
        if labels_path.is_file():
            return DetectionDataset.from_yolo(images_dir=images, data_yaml=labels_path)
        classes_file = labels_path / "classes.txt"
        if not classes_file.is_file():
            raise FileNotFoundError(
                f"YOLO labels {labels_path}: give its data.yaml, or put the class names in "
                f"{classes_file}, one a line"
            )
        classes = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
        return DetectionDataset.from_yolo(
            images_dir=images, labels_dir=labels_path, classes=classes
        )
    raise ValueError(f"labels_format {labels_format!r} is not one of {', '.join(LABEL_FORMATS)}")


def widget_labels(session: LabellingSession) -> DetectionDataset:
    """The images labelled (saved) in a labelling session, with their boxes."""
    from kit.data import DetectionDataset

    dataset = DetectionDataset.from_yolo(
        images_dir=session.image_paths[0].parent,
        labels_dir=session.labels_dir,
        classes=session.classes,
    )
    return dataset.subset(
        [item for item in dataset.items if session.label_path(item.path).is_file()]
    )


def register_customer_model(settings: Settings, name: str, path: str | Path) -> str:
    """A customer's own ultralytics ``.pt`` as a version of ``name``; returns ``name:version``.

    The file is registered with :func:`kit.registry.register_model_file` (classes and input size
    read from the weights), moving no alias; a version of ``name`` holding the very same file is
    reused, so that running a notebook again registers nothing new.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a ``.pt`` file.
        kit.registry.ModelFileError: the file is not a detection model.
    """
    from kit.registry import ModelRegistry, register_model_file, sha256_of

    weights = project_path(path)
    if not weights.is_file():
        raise FileNotFoundError(f"model file {weights} does not exist")
    if weights.suffix != ".pt":
        raise ValueError(f"model file {weights} is not ultralytics PyTorch weights (.pt)")
    registry = ModelRegistry.from_settings(settings)
    wanted = sha256_of(weights)
    if name in registry.model_names():
        for metadata in reversed(registry.list_models(name)):
            pytorch = metadata.formats.get("pytorch")
            if pytorch is not None and pytorch.sha256 == wanted:
                return f"{name}:{metadata.version}"
    metadata = register_model_file(
        name, weights, description=f"brought by the customer: {weights.name}", registry=registry
    )
    return f"{name}:{metadata.version}"


def training_base(settings: Settings, model_name: str, base: str) -> tuple[str, str]:
    """What notebook 2 fine-tunes from, and a sentence saying why.

    Args:
        model_name: the model being trained (a new version of it is registered).
        base: a model config (``yolo11n.yaml``: from scratch), a ``.pt`` file (relative: from the
            project root; a hub name such as ``yolo11n.pt`` needs the file locally or the
            ``allow_downloads`` setting), a registered ``name:version`` / ``name:alias``, or an
            alias of ``model_name`` alone (``production``). A model that has no such alias yet
            (a new use case) starts from the COCO-pretrained ``yolo11n.pt`` when this machine
            has it or may download it, else from the shipped shelf demo model's weights: transfer
            learning from a detector either way, whose head is rebuilt for the new classes.

    Raises:
        RegistryError: ``name:version`` / ``name:alias`` names nothing registered.
    """
    from kit.registry import ModelRegistry, RegistryError
    from kit.train.local import PRETRAINED_BASE, hub_checkpoint_path

    if base.endswith((".yaml", ".yml")):
        return base, f"training from scratch ({base})"
    if base.endswith(".pt"):
        if base == PRETRAINED_BASE and not project_path(base).is_file():
            return base, f"fine-tuning the COCO-pretrained {base}"
        return str(project_path(base)), f"fine-tuning your weights {project_path(base)}"
    ref = base if ":" in base else f"{model_name}:{base}"
    registry = ModelRegistry.from_settings(settings)
    try:
        resolved = registry.resolve(ref)
    except RegistryError:
        if ":" in base:
            raise
        if settings.allow_downloads or hub_checkpoint_path(PRETRAINED_BASE, settings):
            return PRETRAINED_BASE, (
                f"{ref} does not exist yet: fine-tuning the COCO-pretrained {PRETRAINED_BASE} "
                "(transfer learning; the head is rebuilt for this dataset's classes)"
            )
        from kit.demo_models import demo_model_files

        weights = demo_model_files("shelf")["pytorch"]
        return str(weights), (
            f"{ref} does not exist yet and {PRETRAINED_BASE} is not on this machine "
            "(allow_downloads is off): fine-tuning the shipped shelf demo model's weights "
            "(transfer learning; the head is rebuilt for this dataset's classes)"
        )
    return ref, f"fine-tuning {ref} ({resolved.name}:{resolved.version})"


def sagemaker_training_base(base_model: str) -> dict[str, str]:
    """:func:`kit.train.start_training_job`'s ``base`` and ``model`` for what
    :func:`training_base` chose: a local ``.pt`` travels as the job's ``base`` channel, a
    registered model is read in place, a hub checkpoint (``yolo11n.pt``) is downloaded inside
    the job and a model config trains from scratch there.

    Examples:
        >>> sagemaker_training_base("yolo11n.pt")
        {'model': 'yolo11n.pt'}
        >>> sagemaker_training_base("shelf:production")
        {'base': 'shelf:production'}
    """
    is_file = base_model.endswith(".pt") and Path(base_model).is_file()
    if base_model.endswith((".yaml", ".yml")) or (base_model.endswith(".pt") and not is_file):
        return {"model": base_model}
    return {"base": base_model}


@contextlib.contextmanager
def recorded_requests(service: str, operation: str) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every ``operation`` call made to a boto3 ``service`` client inside the
    block, as the calling code passed them to the client (before botocore validates and sends).

    A notebook shows with it the request that was sent, not one built again for show. Clients
    created from boto3's default session (as :meth:`Settings.client` makes them) are heard.

    Examples:
        >>> with recorded_requests("sagemaker", "CreateTrainingJob") as sent:  # doctest: +SKIP
        ...     start_training_job("datasets/shelf/v1/", settings=settings)
        >>> sent[0]["HyperParameters"]["epochs"]                                # doctest: +SKIP
        '50'
    """
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events
    event = f"provide-client-params.{service}.{operation}"
    handler_id = f"kit-notebook-{uuid.uuid4().hex}"
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(copy.deepcopy(params))

    events.register(event, record, unique_id=handler_id)
    try:
        yield sent
    finally:
        events.unregister(event, unique_id=handler_id)


def demo_camera_configs(cameras: Sequence[str], default_source: str | Path) -> list[dict[str, Any]]:
    """Camera configs from the notebooks' ``cameras`` parameter.

    Each entry is ``<id>=<source>`` (file, image folder, ``rtsp://``, ``webcam:0``) or an id
    alone, which then plays ``default_source`` (e.g. the dataset's held-out images) in a loop.

    Raises:
        ValueError: no camera, or a malformed camera id.
    """
    from kit.package.device import parse_camera

    if not cameras:
        raise ValueError(
            "cameras is empty: name at least one, e.g. 'nb-demo-cam' or 'dock=rtsp://…'"
        )
    configs = []
    for entry in cameras:
        camera_id, _, source = entry.partition("=")
        source = source or str(default_source)
        config = parse_camera(f"{camera_id}={source}", process_fps=2.0)
        if Path(source).is_dir():
            config["source"] = {"uri": str(Path(source).resolve()), "loop": True, "fps": 2}
        configs.append(config)
    return configs


def remove_demo_artefacts(
    settings: Settings,
    *,
    devices: Iterable[str] = (),
    cameras: Iterable[str] = (),
    api: Any = None,
) -> dict[str, int]:
    """Remove what a notebook made for its demo: devices, cameras, their alerts and records.

    Local devices are stopped and uninstalled; the devices', cameras', detections' and alerts'
    records of these ids are deleted from the tables, and the cameras' overrides from the
    control config (through the control API when ``api`` is given). Only ids that start with
    :data:`DEMO_PREFIX` are accepted, so a customer's own device or camera is never touched.

    Returns:
        How many records of each kind were deleted.

    Raises:
        ValueError: an id that is not a demo id.
    """
    devices, cameras = list(devices), list(cameras)
    foreign = [i for i in [*devices, *cameras] if not i.startswith(DEMO_PREFIX)]
    if foreign:
        raise ValueError(f"{foreign} are not demo ids (they must start with {DEMO_PREFIX!r})")
    removed = {"devices": 0, "cameras": 0, "alerts": 0, "detections": 0}
    if settings.target == "local":
        from kit.deploy.local import LocalDevice

        for device_id in devices:
            device = LocalDevice(settings, device_id)
            if device.directory.is_dir():
                device.remove()
    dynamodb, names = settings.client("dynamodb"), settings.resources
    for device_id in devices:
        dynamodb.delete_item(TableName=names.devices_table, Key={"device_id": {"S": device_id}})
        removed["devices"] += 1
    for camera_id in cameras:
        dynamodb.delete_item(TableName=names.cameras_table, Key={"camera_id": {"S": camera_id}})
        removed["cameras"] += 1
        removed["alerts"] += _delete_queried(
            dynamodb, names.alerts_table, ("alert_id",), camera_id, index="by-camera"
        )
        removed["detections"] += _delete_queried(
            dynamodb, names.detections_table, ("camera_id", "sk"), camera_id
        )
    if api is not None and cameras:
        config = api.config()
        kept = {k: v for k, v in config.get("cameras", {}).items() if k not in cameras}
        if len(kept) != len(config.get("cameras", {})):
            config["cameras"] = kept
            api.request("PUT", "/config", json=config)
    return removed


def _delete_queried(
    dynamodb: Any, table: str, key_names: tuple[str, ...], camera_id: str, index: str | None = None
) -> int:
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "camera_id = :camera",
        "ExpressionAttributeValues": {":camera": {"S": camera_id}},
    }
    if index:
        query["IndexName"] = index
    deleted = 0
    for page in dynamodb.get_paginator("query").paginate(**query):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={k: item[k] for k in key_names})
            deleted += 1
    return deleted


def show(
    image: np.ndarray | bytes | Any, *, title: str | None = None, width: int | None = 800
) -> None:
    """Display a BGR image (numpy), encoded image bytes (JPEG, PNG) or a matplotlib figure."""
    from IPython.display import Image, Markdown, display

    if title:
        display(Markdown(f"**{title}**"))
    if isinstance(image, np.ndarray):
        import cv2

        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
        display(Image(data=png.tobytes(), width=width))
    elif isinstance(image, bytes):
        display(Image(data=image, width=width))
    elif hasattr(image, "savefig"):  # a matplotlib Figure made without pyplot
        from io import BytesIO

        buffer = BytesIO()
        image.savefig(buffer, format="png", bbox_inches="tight", dpi=100)
        display(Image(data=buffer.getvalue(), width=width))
    else:
        display(image)


def table(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> None:
    """Display rows of dicts as an HTML table (no pandas needed)."""
    from html import escape

    from IPython.display import HTML, display

    rows = list(rows)
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    display(HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def kit(args: list[str]) -> None:
    """Run a ``kit`` command in the notebook (same code as the terminal); raise if it fails."""
    from kit.cli import main

    code = main([str(arg) for arg in args])
    if code != 0:
        raise RuntimeError(
            f"`kit {' '.join(map(str, args))}` failed with exit code {code} (see above)"
        )


def publish_payload(
    settings: Settings,
    payload: DetectionPayload,
    *,
    frame_jpeg: bytes | None = None,
    timeout_s: float = 30.0,
) -> DetectionPayload:
    """Send ``payload`` (and its annotated frame) to the backend as an edge device does.

    It goes through the edge app's own :class:`~edge_app.publisher.Publisher` (frame to the
    bucket, then the payload to the detections queue) over a spool of its own, so what the
    processor receives is exactly what a device would send. On aws it needs AWS credentials that
    may write to the bucket and the queue.

    Args:
        frame_jpeg: the annotated frame, stored at ``payload.frame_key`` (which it then needs).
        timeout_s: how long the backend may take to accept it.

    Returns:
        ``payload``, sent.

    Raises:
        ValueError: a frame without ``payload.frame_key``.
        TimeoutError: the backend did not accept it within ``timeout_s`` (the error says why).
    """
    from edge_app.publisher import Publisher
    from edge_app.spool import Spool

    with (
        tempfile.TemporaryDirectory(prefix="evk-publish-") as folder,
        Spool(folder, max_bytes=SPOOL_BYTES, fsync=False) as spool,
    ):
        publisher = Publisher(settings, spool).start()
        try:
            publisher.publish(payload, frame_jpeg)
            sent = publisher.flush(timeout_s)
        finally:
            publisher.stop(flush=False)
    if not sent:
        raise TimeoutError(
            f"payload {payload.payload_id} was not accepted within {timeout_s:g} s: "
            f"{publisher.stats.last_error or 'the backend did not answer'}"
        )
    return payload


def wait_for_alert_notice(
    settings: Settings, alert_id: str, *, timeout_s: float = 30.0
) -> AlertNotice:
    """The notification the alerts topic sent about ``alert_id`` (local target: its inbox).

    Notices about other alerts read meanwhile are consumed (the inbox is a demo's mailbox).

    Raises:
        ValueError: the target is not local (on aws the topic e-mails its subscribers).
        TimeoutError: no notice about ``alert_id`` within ``timeout_s``.
    """
    if settings.target != "local":
        raise ValueError(
            f"the alerts inbox exists on the local target only, not on {settings.target!r}: "
            "on aws the alerts topic e-mails its subscribers"
        )
    from kit.local.runner import read_alert_inbox

    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"the alerts topic sent nothing about alert {alert_id} within {timeout_s:g} s"
            )
        for notice in read_alert_inbox(settings, wait_s=max(1, min(20, int(left)))):
            if notice.alert_id == alert_id:
                return notice


def model_size_bytes(path: str | Path) -> int:
    """The size of a model on disk: a file's, or every file's in an export folder (OpenVINO)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        return path.stat().st_size + path.with_suffix(".bin").stat().st_size
    return path.stat().st_size


def pytorch_speed(
    weights: str | Path, frame: np.ndarray, *, imgsz: int, runs: int = 30, conf: float = 0.4
) -> ExportSpeed:
    """How fast the PyTorch weights detect on ``frame`` here: the baseline the exports beat.

    Timed like :func:`kit.compile.measure_export_speed` times an export (one untimed run first,
    then ``runs`` whole predictions: letterbox, inference, NMS), with ultralytics on the CPU.
    """
    from kit.compile.speed import ExportSpeed

    model = _pytorch_model(weights)
    predict = {"imgsz": imgsz, "conf": conf, "device": "cpu", "verbose": False}
    model.predict(frame, **predict)
    times_ms = []
    for _ in range(runs):
        started = time.perf_counter()
        result = model.predict(frame, **predict)[0]
        times_ms.append((time.perf_counter() - started) * 1000)
    return ExportSpeed(
        format="pytorch",
        model=Path(weights),
        runs=runs,
        median_ms=statistics.median(times_ms),
        fastest_ms=min(times_ms),
        objects=len(result.boxes),
    )


def speed_and_size_rows(speeds: Iterable[ExportSpeed]) -> list[dict[str, Any]]:
    """Table rows: each model's speed, its size on disk and both relative to the first (the
    PyTorch baseline)."""
    speeds = list(speeds)
    if not speeds:
        return []
    base_ms, base_bytes = speeds[0].median_ms, model_size_bytes(speeds[0].model)
    rows = []
    for speed in speeds:
        size = model_size_bytes(speed.model)
        rows.append(
            {
                **speed.as_row(),
                "size MB": round(size / 1e6, 1),
                "speed-up": f"{base_ms / speed.median_ms:.1f}x",
                "size vs PyTorch": f"{size / base_bytes:.0%}",
            }
        )
    return rows


def detections_side_by_side(
    weights: str | Path,
    exports: Mapping[str, str | Path],
    frame: np.ndarray,
    *,
    imgsz: int,
    conf: float = 0.4,
    panel_width: int = 360,
) -> np.ndarray:
    """One frame as the PyTorch model and each export see it, side by side (a BGR image).

    Each panel is the frame with the boxes one model found (class and confidence), titled with
    the model's format and how many objects it found; the exports run on the edge runtime's own
    detector, as on a device.
    """
    import cv2

    from edge_app.annotate import BoxAnnotator, LabelAnnotator
    from edge_app.detections import Detections
    from edge_app.detectors import load_detector

    result = _pytorch_model(weights).predict(
        frame, imgsz=imgsz, conf=conf, device="cpu", verbose=False
    )[0]
    found = {
        "pytorch": Detections(
            xyxy=result.boxes.xyxy.numpy(),
            confidence=result.boxes.conf.numpy(),
            class_id=result.boxes.cls.numpy().astype(np.int64),
            class_names=dict(result.names),
        )
    }
    for fmt, path in exports.items():
        found[fmt] = load_detector(path).detect(frame, conf=conf)
    panels = []
    for fmt, detections in found.items():
        scene = frame.copy()
        BoxAnnotator().annotate(scene, detections)
        LabelAnnotator().annotate(scene, detections)
        scale = panel_width / scene.shape[1]
        scene = cv2.resize(scene, (panel_width, round(scene.shape[0] * scale)))
        title = np.full((28, panel_width, 3), 255, np.uint8)
        found_text = f"{fmt}: {len(detections)} object{'' if len(detections) == 1 else 's'}"
        cv2.putText(
            title, found_text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
        )
        panels.append(np.vstack([title, scene]))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.hstack(row)


def _pytorch_model(weights: str | Path) -> Any:
    configure_ultralytics()
    from ultralytics import YOLO

    return YOLO(str(weights))


def held_out_frame(settings: Settings, model: str, work_dir: str | Path) -> np.ndarray:
    """A held-out image of the dataset ``model`` was trained on; for a model without one, a
    synthetic scene of its use case (or of the shelf)."""
    import cv2

    from kit.promote import val_images
    from kit.registry import ModelRegistry

    metadata = ModelRegistry.from_settings(settings).get(model)
    trained_on = (metadata.dataset or "").strip("/").split("/")
    if len(trained_on) == 3 and trained_on[0] == "datasets":
        data_yaml = fetch_dataset(settings, f"{trained_on[1]}:{trained_on[2]}", work_dir)
        images = val_images(data_yaml)
        if images:
            return cv2.imread(str(images[0]))
    from kit.synthetic import USE_CASES, render_scene

    return render_scene(metadata.name if metadata.name in USE_CASES else "shelf", seed=1).image


def annotated_frame(
    model_file: str | Path, image: np.ndarray, *, class_name: str, conf: float = 0.25
) -> tuple[np.ndarray, int]:
    """``image`` with the boxes of ``class_name`` an exported model finds in it, drawn as the edge
    app draws them, and how many there are: what a device would publish for this frame."""
    from edge_app.annotate import BoxAnnotator, LabelAnnotator
    from edge_app.detectors import load_detector

    detections = load_detector(model_file).detect(image, conf=conf, classes=[class_name])
    scene = image.copy()
    BoxAnnotator().annotate(scene, detections)
    LabelAnnotator().annotate(scene, detections)
    return scene, len(detections)


def show_alert(alert: Mapping[str, Any], frame: bytes | None = None) -> None:
    """Display an alert as a card: its state, camera, rule, value against threshold, message,
    times, and the frame that raised it."""
    import base64
    from html import escape

    from IPython.display import HTML, display

    colours = {"OPEN": "#c62828", "ACKED": "#ef6c00", "RESOLVED": "#2e7d32"}
    state = str(alert.get("state", ""))
    facts = [
        ("camera", alert.get("camera_id")),
        ("rule", f"{alert.get('rule_type')} ({alert.get('rule')})"),
        ("value", f"{alert.get('value')} (threshold {alert.get('threshold')})"),
        ("opened", alert.get("opened_at")),
        ("alert", alert.get("alert_id")),
    ]
    rows = "".join(
        f"<tr><td style='color:#666;padding-right:12px'>{escape(k)}</td>"
        f"<td>{escape(str(v))}</td></tr>"
        for k, v in facts
    )
    image = (
        f"<img src='data:image/jpeg;base64,{base64.b64encode(frame).decode()}' "
        "style='max-width:420px;display:block;margin-top:8px'/>"
        if frame
        else ""
    )
    display(
        HTML(
            f"<div style='border:1px solid #ccc;border-left:6px solid "
            f"{colours.get(state, '#555')};border-radius:6px;padding:10px 14px;max-width:460px;"
            "font-family:sans-serif'>"
            f"<div style='font-weight:bold;color:{colours.get(state, '#555')}'>{escape(state)} "
            f"alert</div><div style='margin:4px 0 8px'>{escape(str(alert.get('message', '')))}"
            f"</div><table style='font-size:90%'>{rows}</table>{image}</div>"
        )
    )


def show_dashboard_snapshot(api: ControlApiClient, *, frames: int = 3) -> dict[str, int]:
    """What the dashboard shows now, as a static picture: the newest annotated frame of up to
    ``frames`` cameras, and tables of the cameras, the open alerts and the devices.

    For executed notebooks (papermill, CI) and their HTML or GitHub rendering, where the live
    widgets would be empty. It reads the control API as the dashboard does.

    Returns:
        How many cameras, open alerts and devices there are.
    """
    from IPython.display import Markdown, display

    from kit.dashboard import ControlApiError

    cameras, alerts, devices = api.cameras(), api.alerts(state="OPEN"), api.devices()
    display(Markdown(f"**Dashboard at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}**"))
    shown = 0
    for camera in cameras:
        if shown >= frames or not camera.get("frame_key"):
            continue
        try:
            latest = api.latest_frame(camera["camera_id"])
            image = api.fetch_frame(latest["url"])
        except ControlApiError:
            continue  # a frame that is gone (or not linkable) leaves the camera's row only
        show(image, title=f"{camera['camera_id']}: {latest['captured_at']}", width=480)
        shown += 1
    if cameras:
        table(
            [
                {
                    "camera": c["camera_id"],
                    "device": c.get("device_id") or "",
                    "model": _model_label(c.get("model")) or c.get("configured_model") or "",
                    "counts": ", ".join(f"{k} {v}" for k, v in (c.get("counts") or {}).items()),
                    "last seen": c.get("last_seen") or "never",
                    "rules": ", ".join(c.get("rules") or []),
                    "open alerts": len(c.get("active_alerts") or []),
                }
                for c in cameras
            ]
        )
    else:
        display(Markdown("No camera has published or been configured yet."))
    if alerts:
        table(
            [
                {
                    "camera": a.get("camera_id"),
                    "rule": a.get("rule"),
                    "message": a.get("message"),
                    "opened": a.get("opened_at"),
                }
                for a in alerts
            ]
        )
    else:
        display(Markdown("No open alert."))
    if devices:
        table(
            [
                {
                    "device": d.get("device_id"),
                    "health": d.get("health") or "",
                    "last heartbeat": d.get("received_at") or "",
                }
                for d in devices
            ]
        )
    else:
        display(Markdown("No device has sent a heartbeat yet."))
    return {"cameras": len(cameras), "alerts": len(alerts), "devices": len(devices)}


def _model_label(model: Any) -> str:
    if isinstance(model, Mapping) and model.get("name"):
        return f"{model['name']}:{model.get('version', '?')}"
    return str(model or "")
