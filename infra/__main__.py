"""What ``pulumi up`` runs (``main: infra/`` in Pulumi.yaml): the Edge Vision Kit backend."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script (its path first on sys.path): import `infra` and `kit` as
# packages from the repository root instead, so infra/config.py never shadows a module `config`.
PROGRAM_DIR = Path(__file__).resolve().parent
REPO_ROOT = str(PROGRAM_DIR.parent)
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != PROGRAM_DIR]
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from infra.program import main  # noqa: E402

main()
