"""The local AWS target: a moto server the kit starts, provisions, snapshots and stops."""

from kit.local.stack import LocalStack, LocalStackError, StackStatus

__all__ = ["LocalStack", "LocalStackError", "StackStatus"]
