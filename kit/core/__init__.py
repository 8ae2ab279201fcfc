"""The shared core: what an edge device and the cloud both run.

- :mod:`kit.core.contracts` — the message contracts (payload, heartbeat, control config, alert,
  model metadata), versioned and validated at every boundary;
- :mod:`kit.core.settings` — settings from defaults, ``evk.yaml``, ``EVK_*`` variables;
- :mod:`kit.core.backend` — the backend's description (tables, queues, functions, permissions);
- :mod:`kit.core.registry` — the model registry reader (resolve, one alias rule, verified download);
- :mod:`kit.core.config_record` — how a control config is stored in its table;
- :mod:`kit.core.timefmt` — the stored timestamp format;
- :mod:`kit.core.geometry` — zone membership (plain Python): one meaning for the device and the
  rules; :mod:`kit.core.boxes` — box IoU, clipping and anchors on numpy arrays (device and kit);
- :mod:`kit.core.rules` — what each rule means (each rule contract's ``evaluate(observation)``):
  one meaning for the device and the cloud.

``edge_app/`` and ``lambdas/`` import ``kit`` only through this package, and it imports nothing
else of the project (import-linter contracts in ``pyproject.toml`` guard both). It needs only
pydantic and the standard library (numpy in :mod:`kit.core.boxes` only; PyYAML and boto3
lazily), so it fits a device image and a Lambda archive whole.
"""

__version__ = "0.1.0"
"""The kit's version (``kit.__version__``; pyproject.toml says the same)."""
