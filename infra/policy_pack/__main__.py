"""The kit's guardrails as a Pulumi policy pack: ``pulumi preview --policy-pack infra/policy_pack``.

A thin wrapper: the checks live in :mod:`infra.policies` as plain functions that the tests call
directly. Constructing ``PolicyPack`` waits for the Pulumi engine, so nothing imports this file.
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack, StackValidationPolicy  # noqa: E402

from infra.policies import GUARDRAILS  # noqa: E402


def _stack_policy(guardrail):
    def validate(args, report_violation):
        guardrail.validate(args.resources, report_violation)

    return StackValidationPolicy(
        name=guardrail.name,
        description=guardrail.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


PolicyPack(
    name="edge-vision-kit-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_stack_policy(guardrail) for guardrail in GUARDRAILS],
)
