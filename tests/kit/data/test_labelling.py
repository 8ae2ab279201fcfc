import cv2
import numpy as np
import pytest

from kit.data import (
    DatasetFormatError,
    LabellingSession,
    detections_to_widget_bboxes,
    widget_bboxes_to_yolo_lines,
    yolo_lines_to_widget_bboxes,
)

CLASSES = ["person", "helmet"]


def test_yolo_and_widget_boxes_round_trip():
    lines = [
        "1 0.25000000 0.50000000 0.10000000 0.20000000",
        "0 0.50000000 0.50000000 1.00000000 1.00000000",
    ]

    bboxes = yolo_lines_to_widget_bboxes(lines, classes=CLASSES, image_width=200, image_height=100)

    assert bboxes[0]["label"] == "helmet"
    assert [bboxes[0][k] for k in ("x", "y", "width", "height")] == pytest.approx([40, 40, 20, 20])
    assert (
        widget_bboxes_to_yolo_lines(bboxes, classes=CLASSES, image_width=200, image_height=100)
        == lines
    )


def test_widget_boxes_are_normalised_and_clipped():
    bboxes = [
        {"x": 50, "y": 40, "width": -20, "height": -20, "label": "person"},  # dragged up-left
        {"x": 190, "y": -10, "width": 30, "height": 30, "label": "helmet"},  # past the corner
        {"x": 250, "y": 10, "width": 5, "height": 5, "label": "helmet"},  # fully outside
    ]

    lines = widget_bboxes_to_yolo_lines(bboxes, classes=CLASSES, image_width=200, image_height=100)

    assert lines == [
        "0 0.20000000 0.30000000 0.10000000 0.20000000",
        "1 0.97500000 0.10000000 0.05000000 0.20000000",
    ]


def test_widget_box_errors_name_the_box():
    with pytest.raises(
        ValueError, match=r"box 1 has label ''; expected one of \['person', 'helmet'\]"
    ):
        widget_bboxes_to_yolo_lines(
            [
                {"x": 1, "y": 1, "width": 2, "height": 2, "label": "person"},
                {"x": 1, "y": 1, "width": 2, "height": 2, "label": ""},
            ],
            classes=CLASSES,
            image_width=10,
            image_height=10,
        )
    with pytest.raises(ValueError, match="box 0 is .*expected numeric 'x'"):
        widget_bboxes_to_yolo_lines(
            [{"label": "person", "x": 1}], classes=CLASSES, image_width=10, image_height=10
        )
    with pytest.raises(DatasetFormatError, match="class id 5 is out of range"):
        yolo_lines_to_widget_bboxes(
            ["5 0.5 0.5 0.1 0.1"], classes=CLASSES, image_width=10, image_height=10
        )


def test_detections_to_widget_bboxes_skips_unknown_classes():
    bboxes, skipped = detections_to_widget_bboxes(
        [("person", 1, 2, 11, 22), ("dog", 0, 0, 1, 1), ("helmet", np.float32(3), 4, 5, 6)],
        classes=CLASSES,
    )

    assert bboxes == [
        {"x": 1.0, "y": 2.0, "width": 10.0, "height": 20.0, "label": "person"},
        {"x": 3.0, "y": 4.0, "width": 2.0, "height": 2.0, "label": "helmet"},
    ]
    assert skipped == ["dog"]
    with pytest.raises(ValueError, match=r"pre-label 0 is \('person', 1\)"):
        detections_to_widget_bboxes([("person", 1)], classes=CLASSES)


@pytest.fixture
def site(make_image, tmp_path):
    for index in range(3):
        make_image(tmp_path / "images" / f"site_{index}.jpg", 200, 100, index)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/site_0.txt").write_text("0 0.50000000 0.50000000 0.20000000 0.40000000\n")
    return tmp_path


def test_session_loads_existing_labels_and_saves_on_next(site):
    session = LabellingSession(site / "images", CLASSES, site / "labels")

    assert session.current_image.name == "site_0.jpg"
    assert session.widget.image_bytes == (site / "images/site_0.jpg").read_bytes()
    assert [
        (b["label"], round(b["x"]), round(b["y"]), round(b["width"]), round(b["height"]))
        for b in session.widget.bboxes
    ] == [("person", 80, 30, 40, 40)]
    assert "1 / 3" in session.status.value and "1 of 3 done" in session.status.value

    session.widget.bboxes = session.widget.bboxes + [
        {"x": 0, "y": 0, "width": 100, "height": 50, "label": "helmet"}
    ]
    session.next()

    assert session.current_image.name == "site_1.jpg"
    assert session.widget.bboxes == []
    assert (site / "labels/site_0.txt").read_text().splitlines() == [
        "0 0.50000000 0.50000000 0.20000000 0.40000000",
        "1 0.25000000 0.25000000 0.50000000 0.50000000",
    ]


def test_session_navigation_saves_only_what_it_should(site):
    session = LabellingSession(site / "images", CLASSES, site / "labels")
    session.skip()  # site_1 is shown, nothing written
    assert not (site / "labels/site_1.txt").exists()

    session.previous()  # no changes on site_1: still nothing written
    assert session.index == 0 and not (site / "labels/site_1.txt").exists()
    session.previous()  # already on the first image
    assert session.index == 0

    session.show(2)
    session.next()  # last image: saved (as background), stays
    assert session.index == 2 and (site / "labels/site_2.txt").read_text() == ""
    assert "last image" in session.status.value
    assert session.labelled_count == 2

    session.show(1)
    session.widget.bboxes = [{"x": 10, "y": 10, "width": 20, "height": 20, "label": "person"}]
    assert session.has_unsaved_changes
    session.previous()  # changed: saved before going back
    assert (site / "labels/site_1.txt").read_text().startswith("0 0.10000000 0.20000000")
    with pytest.raises(IndexError, match=r"image index 3; expected 0\.\.2"):
        session.show(3)


def test_session_buttons_and_widget_submit_drive_it_headless(site):
    session = LabellingSession(site / "images", CLASSES, site / "labels")

    session.widget._handle_custom_msg({"type": "submit"}, [])  # the widget's own Submit
    assert session.index == 1
    session.widget._handle_custom_msg({"type": "skip"}, [])
    assert session.index == 2 and not (site / "labels/site_1.txt").exists()
    session.previous_button.click()
    assert session.index == 1

    session.widget.bboxes = [{"x": 1, "y": 1, "width": 5, "height": 5, "label": "unknown"}]
    session.save_button.click()  # the error is shown, not raised into the widget's log

    assert "box 0 has label &#x27;unknown&#x27;; expected one of" in session.status.value
    assert not (site / "labels/site_1.txt").exists()
    assert session.prelabel_button.disabled


def test_session_prelabels_images_without_labels(site):
    seen_shapes = []

    def prelabel(image_bgr):
        seen_shapes.append(image_bgr.shape)
        assert image_bgr.dtype == np.uint8
        return [("helmet", 20, 10, 60, 50), ("dog", 0, 0, 5, 5)]

    session = LabellingSession(site / "images", CLASSES, site / "labels", prelabel=prelabel)
    assert seen_shapes == []  # site_0 has labels: no pre-labelling

    session.skip()

    assert seen_shapes == [(100, 200, 3)]
    assert session.widget.bboxes == [
        {"x": 20.0, "y": 10.0, "width": 40.0, "height": 40.0, "label": "helmet"}
    ]
    assert "pre-labelled 1 boxes (not saved yet)" in session.status.value
    assert "ignored classes not in this task: dog" in session.status.value
    assert not (site / "labels/site_1.txt").exists() and session.has_unsaved_changes

    session.next()
    assert (site / "labels/site_1.txt").read_text() == (
        "1 0.20000000 0.30000000 0.20000000 0.40000000\n"
    )
    session.show(0)
    assert session.apply_prelabel() == 1  # the button / method re-runs it on demand
    assert session.widget.bboxes[0]["label"] == "helmet"


def test_session_refuses_bad_setup(site, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        LabellingSession(tmp_path / "empty", CLASSES, tmp_path / "labels")
    with pytest.raises(ValueError, match="classes is empty"):
        LabellingSession(site / "images", [], site / "labels")
    session = LabellingSession(site / "images", CLASSES, site / "labels")
    with pytest.raises(ValueError, match="no prelabel callable"):
        session.apply_prelabel()


def test_session_reports_unreadable_images(site):
    (site / "images/site_1.jpg").write_bytes(b"not an image")
    session = LabellingSession(site / "images", CLASSES, site / "labels")

    with pytest.raises(ValueError, match="not a readable image"):
        session.show(1)
    assert cv2.imread(str(site / "images/site_0.jpg")) is not None
