"""The shared core: what an edge device and the cloud both run.

- :mod:`kit.core.contracts` — the message contracts (payload, heartbeat, control config, alert,
  model metadata), versioned and validated at every boundary;
- :mod:`kit.core.settings` — settings from defaults, ``evk.yaml``, ``EVK_*`` variables;
- :mod:`kit.core.backend` — the backend's description (tables, queues, functions, permissions);
- :mod:`kit.core.registry` — the model registry reader (resolve, one alias rule, verified download);
- :mod:`kit.core.config_record` — how a control config is stored in its table;
- :mod:`kit.core.geometry` — point in polygon, box IoU, clipping: one meaning for the device and
  the rules.

``edge_app/`` and ``lambdas/`` import ``kit`` only through this package, and it imports nothing
else of the project (import-linter contracts in ``pyproject.toml`` guard both). It needs only
pydantic, numpy and the standard library (PyYAML and boto3 lazily), so it fits a device image
and a Lambda archive whole.
"""
