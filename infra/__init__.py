"""The Pulumi program for Edge Vision Kit's AWS backend: one ComponentResource per concern.

Every resource is built from :func:`kit.core.backend.describe_backend`, the same description
``kit local up`` provisions on moto, so both targets hold the same queues, tables, keys and topic.
``infra/__main__.py`` is what ``pulumi up`` runs; :func:`infra.program.build_backend` is what the
tests run under Pulumi's mocks.
"""
