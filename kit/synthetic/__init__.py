"""Synthetic scenes with exact labels for the kit's three use cases.

Procedural pictures (numpy + OpenCV only, deterministic by seed) for offline demos, tests
and benchmarks: bottles on a shelf (``shelf``), fish in water (``fish``) and workers with
or without a hard hat on a construction site (``ppe``); YOLO datasets of them; and scenario
videos with per-frame ground truth.

Examples:
    >>> from kit.synthetic import render_scene
    >>> scene = render_scene("ppe", seed=0, size=(320, 240))
    >>> scene.classes
    ['person', 'helmet']
"""

from kit.synthetic import fish, ppe, shelf  # noqa: F401  (they register their use cases)
from kit.synthetic.core import USE_CASES, Scene, SceneLayout, UseCase, compose, render_scene
from kit.synthetic.dataset import make_dataset, merged_classes, split_counts
from kit.synthetic.preview import draw_labels, preview_grid
from kit.synthetic.video import (
    SCENARIOS,
    FrameTruth,
    ScenarioClip,
    ScenarioInfo,
    open_scenario,
    scenario_frames,
    write_scenario_video,
)

__all__ = [
    "SCENARIOS",
    "USE_CASES",
    "FrameTruth",
    "ScenarioClip",
    "ScenarioInfo",
    "Scene",
    "SceneLayout",
    "UseCase",
    "compose",
    "draw_labels",
    "make_dataset",
    "merged_classes",
    "open_scenario",
    "preview_grid",
    "render_scene",
    "scenario_frames",
    "split_counts",
    "write_scenario_video",
]
