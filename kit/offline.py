"""Make ultralytics work offline: no weight, font or package downloads, config in the project.

Call :func:`configure_ultralytics` before the first ``import ultralytics`` (the kit's training,
export and notebook helpers do it for you). It sets ``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=False``
and ``YOLO_CONFIG_DIR`` and places a font where ultralytics' plotting looks for ``Arial.ttf``, so
that nothing is fetched from the network.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def configure_ultralytics(config_dir: str | Path | None = None) -> Path:
    """Set the offline environment for ultralytics; return its config dir.

    Args:
        config_dir: where ultralytics keeps its settings (default ``$YOLO_CONFIG_DIR`` or
            ``<state dir>/ultralytics``).

    Raises:
        RuntimeError: when ultralytics was already imported with other settings.
    """
    if config_dir is None:
        config_dir = os.environ.get("YOLO_CONFIG_DIR")
    if config_dir is None:
        from kit.core.settings import load_settings

        config_dir = load_settings().state_dir / "ultralytics"
    config_dir = Path(config_dir).resolve()
    if "ultralytics" in sys.modules and os.environ.get("YOLO_CONFIG_DIR") != str(config_dir):
        if os.environ.get("YOLO_OFFLINE") == "1":
            return Path(os.environ["YOLO_CONFIG_DIR"])
        raise RuntimeError(
            "ultralytics was imported before kit.offline.configure_ultralytics(); call it first "
            "(restart the kernel) so that nothing is downloaded"
        )
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    fonts = config_dir / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    source = _bundled_font()
    for name in FONT_NAMES:
        target = fonts / name
        if not target.exists() and source is not None:
            shutil.copyfile(source, target)
    return config_dir


def _bundled_font() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None
