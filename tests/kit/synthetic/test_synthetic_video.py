"""Scenario videos: files, sidecars and the ground-truth trends each scenario promises."""

import json

import cv2
import numpy as np
import pytest

from kit.synthetic.video import ScenarioInfo, open_scenario, scenario_frames, write_scenario_video

SIZE = (320, 240)


def _truths(scenario, seconds, fps=8, seed=0, **params):
    return [
        truth
        for _, truth in scenario_frames(
            scenario, seconds=seconds, fps=fps, size=SIZE, seed=seed, **params
        )
    ]


def test_video_file_and_sidecar(tmp_path):
    target = tmp_path / "clips" / "helmet.mp4"

    info = write_scenario_video("helmet_off", target, seconds=2, fps=6, size=SIZE, seed=4)

    assert info.frame_count == 12 and info.fps == 6.0 and info.size == SIZE
    capture = cv2.VideoCapture(str(target))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        frames += 1
    capture.release()
    assert frames == 12
    sidecar = json.loads(target.with_suffix(".json").read_text())
    assert sidecar["frame_count"] == 12 and sidecar["classes"] == ["person", "helmet"]
    assert len(sidecar["frames"]) == 12 and sidecar["frames"][0]["counts"] == {
        "person": 1,
        "helmet": 1,
    }
    loaded = ScenarioInfo.load(target)
    assert loaded.counts == info.counts and loaded.size == SIZE


def test_avi_uses_mjpg(tmp_path):
    info = write_scenario_video("fish_arriving", tmp_path / "fish.avi", seconds=1, fps=4, size=SIZE)
    assert cv2.VideoCapture(str(tmp_path / "fish.avi")).isOpened()
    assert info.frame_count == 4


def test_frames_are_deterministic_by_seed():
    first = list(scenario_frames("fish_arriving", seconds=1, fps=4, size=SIZE, seed=2))
    second = list(scenario_frames("fish_arriving", seconds=1, fps=4, size=SIZE, seed=2))
    other = list(scenario_frames("fish_arriving", seconds=1, fps=4, size=SIZE, seed=3))

    assert all(
        np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, second, strict=True)
    )
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("seed", [0, 1])
def test_bottles_are_removed_one_by_one(seed):
    truths = _truths("bottles_removed", seconds=5, seed=seed, n_bottles=6, remaining=1)
    counts = [t.counts["bottle"] for t in truths]

    assert counts[0] == 6 and counts[-1] == 1
    assert all(later <= earlier for earlier, later in zip(counts, counts[1:], strict=False))
    assert all(earlier - later <= 1 for earlier, later in zip(counts, counts[1:], strict=False))
    # a bottle keeps its track id until it leaves
    ids = [set(t.track_ids) for t in truths]
    assert all(later <= earlier for earlier, later in zip(ids, ids[1:], strict=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fish_fill_the_region(seed):
    clip = open_scenario(
        "fish_arriving", seconds=6, fps=6, size=SIZE, seed=seed, max_fish=8, start_fish=1
    )
    truths = [truth for _, truth in clip.frames()]
    in_region = [t.extras["in_region"] for t in truths]

    assert clip.region is not None and len(clip.region) >= 3
    assert in_region[0] == 1 and in_region[-1] >= 6
    assert all(later >= earlier for earlier, later in zip(in_region, in_region[1:], strict=False))
    assert all(t.extras["in_region"] <= t.counts["fish"] for t in truths)


def test_helmet_comes_off_while_the_person_stays():
    truths = _truths("helmet_off", seconds=6, seed=5)
    persons = [t.counts["person"] for t in truths]
    helmets = [t.counts["helmet"] for t in truths]
    worn = [t.extras["helmets_worn"] for t in truths]
    violations = [t.extras["persons_without_helmet"] for t in truths]

    assert persons == [1] * len(truths)
    assert helmets[0] == 1 and helmets[-1] == 0
    assert all(later <= earlier for earlier, later in zip(helmets, helmets[1:], strict=False))
    # it leaves the head before it leaves the picture: held in the hand for a while
    first_off = worn.index(0)
    assert 0 < first_off < helmets.index(0)
    assert worn[first_off:] == [0] * (len(worn) - first_off)
    assert violations == [1 - w for w in worn]


def test_worn_helmet_tops_the_person_and_is_later_held_below_the_shoulders():
    truths = _truths("helmet_off", seconds=6, seed=5)

    def boxes(truth):
        return {c: np.array(b) for b, c in zip(truth.boxes, truth.class_ids, strict=True)}

    worn = boxes(truths[0])
    assert worn[1][1] == worn[0][1]  # the helmet is the top of its wearer's box
    held = [boxes(t) for t in truths if t.extras["helmets_worn"] == 0 and t.counts["helmet"] == 1]
    below_shoulders = [b for b in held if b[1][1] > b[0][1] + 0.25 * (b[0][3] - b[0][1])]
    assert len(below_shoulders) >= 3


def test_unknown_scenario_and_parameter_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown scenario 'cars'.*bottles_removed"):
        open_scenario("cars")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_fish'\].*max_fish"):
        open_scenario("fish_arriving", n_fish=3)
    with pytest.raises(ValueError, match="must end with one of"):
        write_scenario_video("fish_arriving", tmp_path / "fish.gif", seconds=1)
    with pytest.raises(ValueError, match="helmet_color must be one of"):
        open_scenario("helmet_off", helmet_color="pink")
