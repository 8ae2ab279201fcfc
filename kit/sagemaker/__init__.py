"""Files that run inside SageMaker jobs; :mod:`kit.train` packs this folder for a training job.

``train_entry.py`` is the training job's entry script (stdlib + ultralytics only: the container
has no ``kit``) and ``requirements.txt`` what the container installs before running it.
"""

from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
"""The folder packed into ``sourcedir.tar.gz``."""

ENTRY_SCRIPT = "train_entry.py"
REQUIREMENTS_FILE = "requirements.txt"
SOURCE_FILES = (ENTRY_SCRIPT, REQUIREMENTS_FILE)
"""What goes into the source archive (no ``__init__.py``: the script runs standalone)."""
