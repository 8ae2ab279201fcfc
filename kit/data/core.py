"""The dataset value types every other part of `kit.data` speaks.

A `DetectionDataset` is a list of class names plus one `LabelledImage` per image:
its file, its size and its boxes as absolute pixel `xyxy` floats with class ids. The
format modules (`kit.data.formats`) convert it from and to YOLO, COCO, Pascal VOC,
Label Studio and SageMaker Ground Truth; checks, splits and uploads take it as input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetFormatError(ValueError):
    """An annotation file does not follow the format it was read as.

    The message names the file, where in it the problem is (line, entry or element),
    the bad value and what was expected, so a user can open the file and fix it.

    Attributes:
        file: The file that holds the problem.
        location: Where in the file: ``"line 3"``, ``"annotations[5]"``, ``"<object> 2"``.
        problem: What is wrong, including the bad value.
        expected: What the format requires there.

    Examples:
        >>> error = DatasetFormatError("a.txt", "line 2", "found 4 values", "5 values")
        >>> str(error)
        'a.txt: line 2: found 4 values; expected 5 values'
    """

    def __init__(self, file: str | Path, location: str, problem: str, expected: str) -> None:
        self.file = Path(file)
        self.location = location
        self.problem = problem
        self.expected = expected
        where = f"{file}: {location}" if location else f"{file}"
        super().__init__(f"{where}: {problem}; expected {expected}")


def _is_positive_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return number.is_integer() and number > 0


@dataclass(frozen=True, eq=False)
class LabelledImage:
    """One image and its boxes.

    Attributes:
        path: The image file.
        width: Image width in pixels.
        height: Image height in pixels.
        boxes: ``(N, 4)`` float64 array of ``x1, y1, x2, y2`` in absolute pixels.
        class_ids: ``(N,)`` int64 array of indices into the dataset's ``classes``.

    Examples:
        >>> import numpy as np
        >>> image = LabelledImage(
        ...     path=Path("shelf.jpg"), width=640, height=480,
        ...     boxes=np.array([[10, 20, 110, 220]]), class_ids=np.array([0]))
        >>> len(image)
        1
    """

    path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_positive_integer(value):
                raise ValueError(f"{self.path}: {name}={value!r}; expected a positive integer")
            object.__setattr__(self, name, int(value))
        boxes = np.asarray(self.boxes, dtype=np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(
                f"{self.path}: boxes have shape {boxes.shape}; expected (N, 4) x1, y1, x2, y2"
            )
        class_ids = np.asarray(self.class_ids).reshape(-1)
        if class_ids.size and not np.all(np.equal(np.mod(class_ids, 1), 0)):
            raise ValueError(f"{self.path}: class_ids {class_ids.tolist()} are not integers")
        class_ids = class_ids.astype(np.int64)
        if len(class_ids) != len(boxes):
            raise ValueError(
                f"{self.path}: {len(boxes)} boxes but {len(class_ids)} class ids; "
                "expected one class id per box"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "class_ids", class_ids)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True, eq=False)
class DetectionDataset:
    """Object-detection dataset: class names and labelled images.

    Attributes:
        classes: Class names; a box's class id indexes this list.
        items: One `LabelledImage` per image, in a stable order.

    Examples:
        >>> import numpy as np
        >>> dataset = DetectionDataset(
        ...     classes=["bottle"],
        ...     items=[LabelledImage(Path("a.jpg"), 64, 48, np.array([[1, 2, 30, 40]]), [0])])
        >>> dataset.class_counts()
        {'bottle': 1}
    """

    classes: list[str]
    items: list[LabelledImage]

    def __post_init__(self) -> None:
        classes = [str(name) for name in self.classes]
        if len(set(classes)) != len(classes):
            duplicates = sorted({name for name in classes if classes.count(name) > 1})
            raise ValueError(f"class names {duplicates} appear more than once; expected unique")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "items", list(self.items))
        for item in self.items:
            bad = item.class_ids[(item.class_ids < 0) | (item.class_ids >= len(classes))]
            if bad.size:
                raise ValueError(
                    f"{item.path}: class id {int(bad[0])} is out of range; expected 0.."
                    f"{len(classes) - 1} for classes {classes}"
                )

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[LabelledImage]:
        return iter(self.items)

    def __getitem__(self, index: int) -> LabelledImage:
        return self.items[index]

    def __repr__(self) -> str:
        boxes = sum(len(item) for item in self.items)
        return f"DetectionDataset(classes={self.classes}, images={len(self)}, boxes={boxes})"

    def class_counts(self) -> dict[str, int]:
        """Number of boxes per class name, every class included (zero when unused).

        Examples:
            >>> DetectionDataset(classes=["a", "b"], items=[]).class_counts()
            {'a': 0, 'b': 0}
        """
        counts = np.zeros(len(self.classes), dtype=np.int64)
        for item in self.items:
            counts += np.bincount(item.class_ids, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts, strict=True)}

    def subset(self, items: Sequence[LabelledImage]) -> DetectionDataset:
        """A dataset with the same classes and the given items."""
        return DetectionDataset(classes=list(self.classes), items=list(items))

    # --- YOLO -------------------------------------------------------------------------
    @classmethod
    def from_yolo(
        cls,
        *,
        images_dir: str | Path | None = None,
        labels_dir: str | Path | None = None,
        data_yaml: str | Path | None = None,
        classes: Sequence[str] | None = None,
        split: str = "train",
    ) -> DetectionDataset:
        """Read a YOLO dataset (one ``.txt`` per image, normalised ``cls xc yc w h`` lines).

        Args:
            images_dir: Folder of images. When None, taken from ``data_yaml``'s ``split``.
            labels_dir: Folder of label files; defaults to ``images_dir`` with its last
                ``images`` path part replaced by ``labels`` (the ultralytics layout).
            data_yaml: ``data.yaml`` whose ``names`` give the classes.
            classes: Class names, when there is no ``data_yaml``.
            split: Which entry of ``data_yaml`` to read when ``images_dir`` is None.

        Returns:
            The dataset; images without a label file have no boxes.

        Raises:
            DatasetFormatError: A label line or the data.yaml is malformed.

        Examples:
            >>> dataset = DetectionDataset.from_yolo(data_yaml="shelf/data.yaml", split="val")
        """
        from kit.data.formats.yolo import load_yolo

        return load_yolo(
            images_dir=images_dir,
            labels_dir=labels_dir,
            data_yaml=data_yaml,
            classes=classes,
            split=split,
        )

    def as_yolo(
        self,
        out_dir: str | Path,
        *,
        val: DetectionDataset | None = None,
        test: DetectionDataset | None = None,
    ) -> Path:
        """Write this dataset (as the train split) in the ultralytics YOLO layout.

        Images are copied to ``out_dir/images/<split>``, labels written to
        ``out_dir/labels/<split>`` and a ``data.yaml`` with absolute paths to ``out_dir``.

        Args:
            out_dir: Destination folder (created).
            val: Validation split; when None, the train images double as val.
            test: Optional test split.

        Returns:
            The path of the written ``data.yaml``.

        Examples:
            >>> data_yaml = dataset.as_yolo("build/shelf-yolo")
        """
        from kit.data.formats.yolo import save_yolo

        return save_yolo(self, out_dir, val=val, test=test)

    # --- COCO -------------------------------------------------------------------------
    @classmethod
    def from_coco(
        cls, *, annotations_path: str | Path, images_dir: str | Path | None = None
    ) -> DetectionDataset:
        """Read a COCO object-detection json (``images``, ``annotations``, ``categories``).

        Args:
            annotations_path: The COCO json file.
            images_dir: Folder that ``file_name`` is relative to; defaults to the json's folder.

        Raises:
            DatasetFormatError: The json is malformed or references unknown ids.

        Examples:
            >>> dataset = DetectionDataset.from_coco(annotations_path="coco/instances.json")
        """
        from kit.data.formats.coco import load_coco

        return load_coco(annotations_path=annotations_path, images_dir=images_dir)

    def as_coco(
        self, *, annotations_path: str | Path, images_dir: str | Path | None = None
    ) -> Path:
        """Write a COCO json; category ids are the class ids.

        Args:
            annotations_path: The json file to write.
            images_dir: When given, images are copied there and referenced by name;
                otherwise referenced by their absolute path.

        Examples:
            >>> dataset.as_coco(annotations_path="coco/instances.json", images_dir="coco/images")
        """
        from kit.data.formats.coco import save_coco

        return save_coco(self, annotations_path=annotations_path, images_dir=images_dir)

    # --- Pascal VOC -------------------------------------------------------------------
    @classmethod
    def from_voc(
        cls,
        *,
        annotations_dir: str | Path,
        images_dir: str | Path | None = None,
        classes: Sequence[str] | None = None,
    ) -> DetectionDataset:
        """Read Pascal VOC xml files (one per image).

        Args:
            annotations_dir: Folder of ``.xml`` files.
            images_dir: Folder the ``<filename>`` elements are in; images there without an
                xml are included without boxes. When None, each xml's ``<path>`` is used.
            classes: Class names in id order; default: the names found, sorted.

        Raises:
            DatasetFormatError: An xml is malformed or names a class not in ``classes``.

        Examples:
            >>> dataset = DetectionDataset.from_voc(
            ...     annotations_dir="voc/Annotations", images_dir="voc/JPEGImages")
        """
        from kit.data.formats.voc import load_voc

        return load_voc(annotations_dir=annotations_dir, images_dir=images_dir, classes=classes)

    def as_voc(self, *, annotations_dir: str | Path, images_dir: str | Path | None = None) -> Path:
        """Write one Pascal VOC xml per image (integer pixel corners).

        Args:
            annotations_dir: Folder for the ``.xml`` files (created).
            images_dir: When given, images are copied there.

        Examples:
            >>> dataset.as_voc(annotations_dir="voc/Annotations", images_dir="voc/JPEGImages")
        """
        from kit.data.formats.voc import save_voc

        return save_voc(self, annotations_dir=annotations_dir, images_dir=images_dir)

    # --- Label Studio -----------------------------------------------------------------
    @classmethod
    def from_label_studio(
        cls,
        *,
        json_path: str | Path,
        images_dir: str | Path,
        classes: Sequence[str] | None = None,
    ) -> DetectionDataset:
        """Read a Label Studio JSON export of ``rectanglelabels`` results.

        Args:
            json_path: The exported json (a list of tasks).
            images_dir: Folder holding the images, found by the file name in the task's
                ``data.image`` (Label Studio's upload prefix ``1a2b3c4d-`` is tolerated).
            classes: Class names in id order; default: the labels found, sorted.

        Raises:
            DatasetFormatError: The export is malformed or names an unknown class.

        Examples:
            >>> dataset = DetectionDataset.from_label_studio(
            ...     json_path="export.json", images_dir="images")
        """
        from kit.data.formats.label_studio import load_label_studio

        return load_label_studio(json_path=json_path, images_dir=images_dir, classes=classes)

    def as_label_studio(
        self,
        *,
        json_path: str | Path,
        images_dir: str | Path | None = None,
        image_url_prefix: str | None = None,
    ) -> Path:
        """Write a Label Studio import/export json with one annotated task per image.

        Args:
            json_path: The json file to write.
            images_dir: When given, images are copied there.
            image_url_prefix: Prefix for ``data.image`` (e.g. ``/data/local-files/?d=shelf/``);
                default: the image's absolute path.

        Examples:
            >>> dataset.as_label_studio(json_path="tasks.json")
        """
        from kit.data.formats.label_studio import save_label_studio

        return save_label_studio(
            self, json_path=json_path, images_dir=images_dir, image_url_prefix=image_url_prefix
        )

    # --- SageMaker Ground Truth -------------------------------------------------------
    @classmethod
    def from_ground_truth_manifest(
        cls,
        *,
        manifest_path: str | Path,
        images_dir: str | Path,
        label_attribute: str | None = None,
    ) -> DetectionDataset:
        """Read a SageMaker Ground Truth bounding-box output manifest (JSON lines).

        Args:
            manifest_path: The ``output.manifest`` file.
            images_dir: Local folder with the images named as in ``source-ref``.
            label_attribute: The labelling job's attribute name; default: the key that
                has a matching ``<key>-metadata`` entry.

        Raises:
            DatasetFormatError: A line is malformed.

        Examples:
            >>> dataset = DetectionDataset.from_ground_truth_manifest(
            ...     manifest_path="output.manifest", images_dir="images")
        """
        from kit.data.formats.ground_truth import load_ground_truth_manifest

        return load_ground_truth_manifest(
            manifest_path=manifest_path, images_dir=images_dir, label_attribute=label_attribute
        )

    def as_ground_truth_manifest(
        self,
        *,
        manifest_path: str | Path,
        images_dir: str | Path | None = None,
        label_attribute: str = "bounding-box",
        source_ref_prefix: str | None = None,
        job_name: str = "edge-vision-kit-export",
    ) -> Path:
        """Write a SageMaker Ground Truth bounding-box output manifest (integer pixels).

        Args:
            manifest_path: The manifest file to write.
            images_dir: When given, images are copied there.
            label_attribute: The attribute name that holds the labels.
            source_ref_prefix: Prefix for ``source-ref`` (e.g. ``s3://bucket/images/``);
                default: the image's absolute path.
            job_name: Written to the metadata's ``job-name``.

        Examples:
            >>> dataset.as_ground_truth_manifest(
            ...     manifest_path="output.manifest", source_ref_prefix="s3://b/images/")
        """
        from kit.data.formats.ground_truth import save_ground_truth_manifest

        return save_ground_truth_manifest(
            self,
            manifest_path=manifest_path,
            images_dir=images_dir,
            label_attribute=label_attribute,
            source_ref_prefix=source_ref_prefix,
            job_name=job_name,
        )
