"""Buckets: the kit's data bucket (frames, crops, models, datasets, packages) and a secure default.

:class:`SecureBucket` is every bucket of the stack (the pipeline's artifact bucket too): owner-
enforced objects, all public access blocked, SSE-S3, versioning, a bucket policy that refuses
requests without TLS, and lifecycle rules. :class:`Storage` is the data bucket from the backend
description, with frames/ expiring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from kit.core.backend import BucketSpec


@dataclass
class SecureBucketArgs:
    """Args of :class:`SecureBucket`.

    Attributes:
        bucket_name: the physical name.
        force_destroy: let ``pulumi destroy`` delete a bucket that still holds objects.
        expiring_prefixes: key prefix → days after which current objects expire.
        noncurrent_days: days old versions are kept before they are deleted.
    """

    bucket_name: str
    force_destroy: bool = False
    expiring_prefixes: dict[str, int] = field(default_factory=dict)
    noncurrent_days: int = 30


class SecureBucket(pulumi.ComponentResource):
    """An S3 bucket that is private, encrypted, versioned and reachable only over TLS."""

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:SecureBucket", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=args.bucket_name, force_destroy=args.force_destroy, opts=child
        )
        # Children take the bucket's name (known at preview), not its id, so the policies can
        # match them to their bucket before anything exists.
        bucket_name = self.bucket.bucket
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_name,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_name,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_name,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_name,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_name,
            rules=lifecycle_rules(args.expiring_prefixes, args.noncurrent_days),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_name,
            policy=self.bucket.arn.apply(tls_only_policy),
            # A bucket policy is refused while the public access block is being created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})


def lifecycle_rules(
    expiring_prefixes: dict[str, int], noncurrent_days: int
) -> list[dict[str, Any]]:
    """Expire objects under each prefix, drop old versions and abandoned multipart uploads."""
    rules: list[dict[str, Any]] = [
        {
            "id": f"expire-{prefix.strip('/').replace('/', '-') or 'everything'}",
            "status": "Enabled",
            "filter": {"prefix": prefix},
            "expiration": {"days": days},
            "noncurrent_version_expiration": {"noncurrent_days": 1},
        }
        for prefix, days in sorted(expiring_prefixes.items())
    ]
    rules.append(
        {
            "id": "old-versions-and-uploads",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }
    )
    return rules


def tls_only_policy(bucket_arn: str) -> str:
    """A bucket policy that denies every request not made over TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


@dataclass
class StorageArgs:
    """Args of :class:`Storage`: the bucket from the backend description and retention."""

    bucket: BucketSpec
    frames_expiry_days: int
    force_destroy: bool = False
    expiring_prefixes: Sequence[str] = ("frames/",)


class Storage(pulumi.ComponentResource):
    """The kit's data bucket: frames/ and crops/ from the edge, models/, datasets/, packages/."""

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Storage", name, {}, opts)
        unknown = [p for p in args.expiring_prefixes if p.rstrip("/") not in args.bucket.prefixes]
        if unknown:
            raise ValueError(
                f"expiring prefixes {unknown} are not prefixes of the bucket; "
                f"known: {', '.join(p + '/' for p in args.bucket.prefixes)}"
            )
        self.data = SecureBucket(
            f"{name}-data",
            SecureBucketArgs(
                bucket_name=args.bucket.name,
                force_destroy=args.force_destroy,
                expiring_prefixes={p: args.frames_expiry_days for p in args.expiring_prefixes},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bucket = self.data.bucket
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
