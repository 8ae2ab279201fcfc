"""Labelling in the notebook with jupyter-bbox-widget, saved as YOLO label files.

The widget speaks boxes as ``{'x', 'y', 'width', 'height', 'label'}`` in pixels; the
plain functions here convert those from and to YOLO lines, and `LabellingSession`
walks a folder of images with them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np
from jupyter_bbox_widget import BBoxWidget

from kit.data.formats.yolo import boxes_to_yolo_lines, parse_yolo_lines
from kit.data.images import list_images, read_image_size

Prelabeller = Callable[[np.ndarray], Iterable[tuple[str, float, float, float, float]]]
"""``prelabel(image_bgr) -> [(class_name, x1, y1, x2, y2), ...]`` in pixels."""


def yolo_lines_to_widget_bboxes(
    lines: Sequence[str], *, classes: Sequence[str], image_width: int, image_height: int
) -> list[dict]:
    """BBoxWidget boxes (pixels) from YOLO label lines.

    Raises:
        DatasetFormatError: A line is malformed or has an unknown class id.

    Examples:
        >>> yolo_lines_to_widget_bboxes(["0 0.5 0.5 0.5 0.5"], classes=["bottle"],
        ...                             image_width=100, image_height=80)
        [{'x': 25.0, 'y': 20.0, 'width': 50.0, 'height': 40.0, 'label': 'bottle'}]
    """
    boxes, class_ids = parse_yolo_lines(
        list(lines), width=image_width, height=image_height, classes=classes
    )
    return [
        {
            "x": float(x1),
            "y": float(y1),
            "width": float(x2 - x1),
            "height": float(y2 - y1),
            "label": classes[class_id],
        }
        for (x1, y1, x2, y2), class_id in zip(boxes, class_ids, strict=True)
    ]


def widget_bboxes_to_yolo_lines(
    bboxes: Iterable[dict], *, classes: Sequence[str], image_width: int, image_height: int
) -> list[str]:
    """YOLO label lines from BBoxWidget boxes (pixels).

    Boxes are clipped to the image (a box dragged past the edge keeps its visible part);
    boxes with no area left are dropped.

    Raises:
        ValueError: A box has a label not in ``classes`` or a missing/non-numeric coordinate.

    Examples:
        >>> widget_bboxes_to_yolo_lines(
        ...     [{"x": 25, "y": 20, "width": 50, "height": 40, "label": "bottle"}],
        ...     classes=["bottle"], image_width=100, image_height=80)
        ['0 0.50000000 0.50000000 0.50000000 0.50000000']
    """
    index_of = {name: index for index, name in enumerate(classes)}
    boxes, class_ids = [], []
    for number, bbox in enumerate(bboxes):
        label = bbox.get("label")
        if label not in index_of:
            raise ValueError(f"box {number} has label {label!r}; expected one of {list(classes)}")
        try:
            x, y, width, height = (float(bbox[key]) for key in ("x", "y", "width", "height"))
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"box {number} is {bbox!r}; expected numeric 'x', 'y', 'width', 'height'"
            ) from None
        x1, x2 = sorted((x, x + width))
        y1, y2 = sorted((y, y + height))
        x1, x2 = np.clip([x1, x2], 0, image_width)
        y1, y2 = np.clip([y1, y2], 0, image_height)
        if x2 > x1 and y2 > y1:
            boxes.append([x1, y1, x2, y2])
            class_ids.append(index_of[label])
    return boxes_to_yolo_lines(
        np.array(boxes, dtype=np.float64).reshape(-1, 4),
        np.array(class_ids, dtype=np.int64),
        width=image_width,
        height=image_height,
    )


def detections_to_widget_bboxes(
    detections: Iterable[Sequence], *, classes: Sequence[str]
) -> tuple[list[dict], list[str]]:
    """BBoxWidget boxes from ``(class_name, x1, y1, x2, y2)`` tuples, e.g. a model's output.

    Returns:
        The boxes whose class is in ``classes``, and the class names that were not
        (a pre-labelling model may know more classes than the labelling task).

    Raises:
        ValueError: A detection is not ``(class_name, x1, y1, x2, y2)``.

    Examples:
        >>> detections_to_widget_bboxes([("bottle", 10, 20, 30, 60), ("cup", 0, 0, 5, 5)],
        ...                             classes=["bottle"])
        ([{'x': 10.0, 'y': 20.0, 'width': 20.0, 'height': 40.0, 'label': 'bottle'}], ['cup'])
    """
    bboxes, skipped = [], []
    for number, detection in enumerate(detections):
        try:
            name, x1, y1, x2, y2 = detection
            x1, y1, x2, y2 = (float(v) for v in (x1, y1, x2, y2))
        except (TypeError, ValueError):
            raise ValueError(
                f"pre-label {number} is {detection!r}; expected (class_name, x1, y1, x2, y2)"
            ) from None
        if name not in classes:
            skipped.append(str(name))
            continue
        bboxes.append({"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "label": str(name)})
    return bboxes, skipped


class LabellingSession:
    """Label a folder of images one at a time in a BBoxWidget; saves YOLO label files.

    Existing label files are loaded into the widget. ``Next`` (and the widget's own
    ``Submit``) saves and moves on, ``Previous`` saves changes and goes back, the
    widget's ``Skip`` moves on without saving. An image without a label file is
    pre-labelled with ``prelabel`` when one is given, and ``Pre-label`` re-runs it.

    Args:
        image_dir: Folder of images to label.
        classes: Class names; a label file's class ids index this list.
        labels_dir: Folder for the YOLO ``<image stem>.txt`` files (created).
        prelabel: Optional ``prelabel(image_bgr) -> [(class_name, x1, y1, x2, y2), ...]``.

    Raises:
        ValueError: ``classes`` is empty or ``image_dir`` holds no images.

    Examples:
        >>> session = LabellingSession("shelf/images", ["bottle"], "shelf/labels")
        >>> session  # shows the widget in a notebook
    """

    def __init__(
        self,
        image_dir: str | Path,
        classes: Sequence[str],
        labels_dir: str | Path,
        prelabel: Prelabeller | None = None,
    ) -> None:
        self.classes = [str(name) for name in classes]
        if not self.classes:
            raise ValueError("classes is empty; expected at least one class name")
        self.image_paths = list_images(image_dir)
        if not self.image_paths:
            raise ValueError(f"{image_dir} holds no images; expected files like *.jpg or *.png")
        self.labels_dir = Path(labels_dir)
        self.labels_dir.mkdir(parents=True, exist_ok=True)
        self.prelabel = prelabel
        self.index = 0
        self._loaded_bboxes: list[dict] = []
        self._image_size = (0, 0)

        self.widget = BBoxWidget(classes=self.classes)
        self.widget.on_submit(self.next)
        self.widget.on_skip(self.skip)
        self.previous_button = widgets.Button(
            description="◀ Previous", tooltip="Save changes, go back"
        )
        self.next_button = widgets.Button(description="Next ▶", tooltip="Save and go on")
        self.save_button = widgets.Button(description="Save", icon="save")
        self.prelabel_button = widgets.Button(
            description="Pre-label", disabled=prelabel is None, tooltip="Boxes from the model"
        )
        self.previous_button.on_click(lambda _: self._run_from_ui(self.previous))
        self.next_button.on_click(lambda _: self._run_from_ui(self.next))
        self.save_button.on_click(lambda _: self._run_from_ui(self.save))
        self.prelabel_button.on_click(lambda _: self._run_from_ui(self.apply_prelabel))
        self.status = widgets.HTML()
        self.ui = widgets.VBox(
            [
                widgets.HBox(
                    [self.previous_button, self.next_button, self.save_button, self.prelabel_button]
                ),
                self.status,
                self.widget,
            ]
        )
        self.show(0)

    @property
    def current_image(self) -> Path:
        """The image on screen."""
        return self.image_paths[self.index]

    def label_path(self, image_path: str | Path) -> Path:
        """The YOLO label file of an image."""
        return self.labels_dir / f"{Path(image_path).stem}.txt"

    @property
    def labelled_count(self) -> int:
        """How many images have a label file."""
        return sum(self.label_path(path).is_file() for path in self.image_paths)

    @property
    def has_unsaved_changes(self) -> bool:
        """Whether the widget's boxes differ from the saved label file."""
        return list(self.widget.bboxes) != self._loaded_bboxes

    def show(self, index: int) -> None:
        """Show image ``index`` with its saved boxes (or pre-labels when it has none).

        Raises:
            IndexError: ``index`` is outside ``0..len(image_paths) - 1``.
        """
        if not 0 <= index < len(self.image_paths):
            raise IndexError(f"image index {index}; expected 0..{len(self.image_paths) - 1}")
        self.index = index
        path = self.current_image
        self._image_size = read_image_size(path)
        label_path = self.label_path(path)
        if label_path.is_file():
            width, height = self._image_size
            self._loaded_bboxes = yolo_lines_to_widget_bboxes(
                label_path.read_text().splitlines(),
                classes=self.classes,
                image_width=width,
                image_height=height,
            )
        else:
            self._loaded_bboxes = []
        self.widget.image = str(path)
        self.widget.bboxes = [dict(bbox) for bbox in self._loaded_bboxes]
        note = ""
        if not label_path.is_file() and self.prelabel is not None:
            note = self._prelabel_current()
        self._set_status(note)

    def save(self) -> Path:
        """Write the widget's boxes to the current image's label file.

        Raises:
            ValueError: A box has a label that is not one of ``classes``.
        """
        width, height = self._image_size
        lines = widget_bboxes_to_yolo_lines(
            self.widget.bboxes, classes=self.classes, image_width=width, image_height=height
        )
        label_path = self.label_path(self.current_image)
        label_path.write_text("".join(f"{line}\n" for line in lines))
        self._loaded_bboxes = yolo_lines_to_widget_bboxes(
            lines, classes=self.classes, image_width=width, image_height=height
        )
        self.widget.bboxes = [dict(bbox) for bbox in self._loaded_bboxes]
        self._set_status(f"saved {len(lines)} boxes to {label_path.name}")
        return label_path

    def next(self) -> None:
        """Save, then show the next image (stays on the last one)."""
        self.save()
        if self.index + 1 < len(self.image_paths):
            self.show(self.index + 1)
        else:
            self._set_status("saved; this is the last image")

    def previous(self) -> None:
        """Save changes (if any), then show the previous image (stays on the first one)."""
        if self.has_unsaved_changes:
            self.save()
        if self.index > 0:
            self.show(self.index - 1)

    def skip(self) -> None:
        """Show the next image without saving this one."""
        if self.index + 1 < len(self.image_paths):
            self.show(self.index + 1)

    def apply_prelabel(self) -> int:
        """Replace the widget's boxes with ``prelabel``'s for the current image.

        Returns:
            The number of boxes put in the widget.

        Raises:
            ValueError: The session has no ``prelabel`` or the image cannot be read.
        """
        if self.prelabel is None:
            raise ValueError("this session has no prelabel callable; pass prelabel=...")
        self._set_status(self._prelabel_current())
        return len(self.widget.bboxes)

    def _prelabel_current(self) -> str:
        image = cv2.imread(str(self.current_image), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{self.current_image} cannot be read as an image")
        bboxes, skipped = detections_to_widget_bboxes(self.prelabel(image), classes=self.classes)
        self.widget.bboxes = bboxes
        note = f"pre-labelled {len(bboxes)} boxes (not saved yet)"
        if skipped:
            note += f"; ignored classes not in this task: {', '.join(sorted(set(skipped)))}"
        return note

    def _set_status(self, note: str) -> None:
        saved = "labelled" if self.label_path(self.current_image).is_file() else "not labelled"
        text = (
            f"<b>{self.index + 1} / {len(self.image_paths)}</b> {html.escape(self.current_image.name)} "
            f"({saved}; {self.labelled_count} of {len(self.image_paths)} done)"
        )
        self.status.value = f"{text} — {html.escape(note)}" if note else text

    def _run_from_ui(self, action: Callable[[], object]) -> None:
        # Button callbacks have no caller to raise to: show the problem instead.
        try:
            action()
        except ValueError as error:
            self.status.value = f"<span style='color:#d62728'>{html.escape(str(error))}</span>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.ui)
