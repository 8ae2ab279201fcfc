"""Run the Pulumi program under Pulumi's own mocks: no CLI, no cloud, no credentials.

``run_program(config)`` builds the whole stack with :func:`infra.program.build_backend` and
records every resource registered (type, name, inputs as the engine receives them: camelCase,
fully resolved), the resolved stack outputs and the IAM documents. The program is imported
inside the run, after a fresh event loop and ``set_mocks`` (notebooks run earlier in the same
pytest session would otherwise leave Pulumi "attached to a different loop").
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

# `infra` is a Pulumi program folder, not an installed package: import it from the repository.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.config import DashboardConfig, PipelineConfig, StackConfig  # noqa: E402

ACCOUNT = "123456789012"


def pytest_configure(config):
    # pulumi_aws warns about its own deprecated aliases when its modules load: not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


LAYER_VERSION = 99
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
"""What the mocks answer for the region's availability zones (region letters replaced)."""


@dataclass
class Recorded:
    """One resource the program registered."""

    type: str
    name: str
    inputs: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return self.type

    @property
    def props(self) -> dict[str, Any]:
        return self.inputs


def _short_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:10]


class BackendMocks(pulumi.runtime.Mocks):
    """Answers like AWS would: ids, ARNs, URLs derived from names, for the types the stack uses."""

    def __init__(self, region: str, zones: tuple[str, ...] | None = None):
        self.region = region
        self.zones = (
            zones if zones is not None else tuple(z.replace("eu-west-1", region) for z in ZONES)
        )
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs)))
        inputs = dict(args.inputs)
        region, account = self.region, ACCOUNT
        name = inputs.get("name") or args.name
        state: dict[str, Any] = {
            **inputs,
            "arn": f"arn:aws:{args.typ.split(':')[1]}:{region}:{account}:{name}",
        }
        resource_id = f"{args.name}-{_short_id(args.name)}"
        kind = args.typ
        if kind == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            state["arn"] = f"arn:aws:s3:::{resource_id}"
        elif kind == "aws:sqs/queue:Queue":
            resource_id = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            state.update(arn=f"arn:aws:sqs:{region}:{account}:{name}", url=resource_id)
        elif kind == "aws:dynamodb/table:Table":
            resource_id = name
            state["arn"] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        elif kind == "aws:sns/topic:Topic":
            resource_id = state["arn"] = f"arn:aws:sns:{region}:{account}:{name}"
        elif kind == "aws:kms/key:Key":
            key_id = f"0000-{_short_id(args.name)}"
            state.update(keyId=key_id, arn=f"arn:aws:kms:{region}:{account}:key/{key_id}")
        elif kind == "aws:lambda/function:Function":
            state["arn"] = f"arn:aws:lambda:{region}:{account}:function:{name}"
            state["invokeArn"] = (
                f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{state['arn']}/invocations"
            )
        elif kind == "aws:iam/role:Role":
            resource_id = name
            state["arn"] = f"arn:aws:iam::{account}:role/{name}"
        elif kind == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
        elif kind == "aws:cloudwatch/eventRule:EventRule":
            state["arn"] = f"arn:aws:events:{region}:{account}:rule/{name}"
        elif kind == "aws:apigatewayv2/api:Api":
            resource_id = _short_id(args.name)
            state.update(
                apiEndpoint=f"https://{resource_id}.execute-api.{region}.amazonaws.com",
                executionArn=f"arn:aws:execute-api:{region}:{account}:{resource_id}",
            )
        elif kind == "aws:apigatewayv2/stage:Stage":
            state["invokeUrl"] = f"https://{inputs['apiId']}.execute-api.{region}.amazonaws.com/"
        elif kind == "aws:cognito/userPool:UserPool":
            resource_id = f"{region}_{_short_id(args.name)}"
            state.update(
                arn=f"arn:aws:cognito-idp:{region}:{account}:userpool/{resource_id}",
                endpoint=f"cognito-idp.{region}.amazonaws.com/{resource_id}",
            )
        elif kind == "aws:iot/roleAlias:RoleAlias":
            state["arn"] = f"arn:aws:iot:{region}:{account}:rolealias/{inputs['alias']}"
        elif kind == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"
        elif kind == "aws:lb/loadBalancer:LoadBalancer":
            state["dnsName"] = f"{name}-{_short_id(args.name)}.{region}.elb.amazonaws.com"
        elif kind == "aws:codebuild/project:Project":
            state["arn"] = f"arn:aws:codebuild:{region}:{account}:project/{name}"
        elif kind == "aws:iam/policy:Policy":
            state["arn"] = f"arn:aws:iam::{account}:policy/{name}"
        elif kind == "docker-build:index:Image":
            digest = "sha256:" + hashlib.sha256(repr(sorted(inputs.items())).encode()).hexdigest()
            state.update(digest=digest, ref=f"{inputs['tags'][0]}@{digest}")
        elif kind == "aws:codestarconnections/connection:Connection":
            state["arn"] = (
                f"arn:aws:codestar-connections:{region}:{account}:connection/{_short_id(name)}"
            )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "AIDA",
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": list(self.zones), "zoneIds": [], "id": self.region}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "registry-password",
                "authorizationToken": "token",
                "proxyEndpoint": f"https://{args.args.get('registryId')}.dkr.ecr.{self.region}",
                "expiresAt": "2099-01-01T00:00:00Z",
                "id": self.region,
            }
        if args.token == "aws:ssm/getParameter:getParameter":
            return {
                "name": args.args["name"],
                "type": "String",
                "value": f"arn:aws:lambda:{self.region}:017000801446:layer:"
                f"AWSLambdaPowertoolsPythonV3-python311-x86_64:{LAYER_VERSION}",
            }
        raise NotImplementedError(f"the mocks do not answer {args.token}")


@dataclass
class ProgramRun:
    """What one run of the program registered and resolved."""

    config: StackConfig
    resources: list[Recorded]
    calls: list[tuple[str, dict[str, Any]]]
    outputs: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)

    def of_type(self, token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == token]

    def one(self, token: str, **inputs: Any) -> Recorded:
        found = [
            r
            for r in self.of_type(token)
            if all(r.inputs.get(key) == value for key, value in inputs.items())
        ]
        assert len(found) == 1, f"expected one {token} with {inputs}, found {len(found)}"
        return found[0]


STACK = "test"
"""The stack name the mocks run under (it names the derived name suffix)."""


def run_program(config: StackConfig, *, docker: bool = True, preview: bool = False) -> ProgramRun:
    """Build the stack for ``config`` under mocks and resolve its outputs and IAM documents.

    Args:
        docker: whether the program sees a Docker daemon (it builds the dashboard image).
        preview: run as ``pulumi preview`` (a dry run) rather than ``pulumi up``.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)
    mocks = BackendMocks(config.region)
    pulumi.runtime.set_mocks(mocks, project="edge-vision-kit", stack=STACK, preview=preview)
    from infra.program import build_backend, stack_outputs

    run = ProgramRun(config=config, resources=mocks.resources, calls=mocks.calls)

    @pulumi.runtime.test
    def program():
        stack = build_backend(config, docker=docker)
        run.config = stack.config
        documents: dict[str, Any] = {
            f"function:{k}": v for k, v in stack.functions.policy_documents.items()
        }
        documents["boundary"] = stack.boundary.document
        if stack.sagemaker is not None:
            documents["sagemaker"] = stack.sagemaker.policy_document
        if stack.edge is not None:
            documents["edge:greengrass"] = stack.edge.token_exchange_policy_document
            if stack.edge.panorama_policy_document is not None:
                documents["edge:panorama"] = stack.edge.panorama_policy_document
        if stack.dashboard is not None:
            documents["dashboard:task"] = stack.dashboard.roles.task_policy_document
            documents["dashboard:execution"] = stack.dashboard.roles.execution_policy_document
        if stack.pipeline is not None:
            documents.update({f"pipeline:{k}": v for k, v in stack.pipeline.role_documents.items()})
            documents["pipeline:pipeline"] = stack.pipeline.pipeline_role_document
        return pulumi.Output.from_input(
            {"outputs": stack_outputs(stack), "documents": documents}
        ).apply(
            lambda resolved: (
                run.outputs.update(resolved["outputs"]),
                run.documents.update(resolved["documents"]),
            )
        )

    program()
    return run


def build_under_mocks(
    build,
    *,
    preview: bool = False,
    zones: tuple[str, ...] | None = None,
    mocks: BackendMocks | None = None,
) -> BackendMocks:
    """Run ``build()`` (which creates resources) as a Pulumi program under mocks; errors propagate.

    Args:
        preview: run as a preview (dry run).
        zones: the availability zones the mocks answer (default :data:`ZONES`).
        mocks: the mocks to record into (to look at what was registered when ``build`` fails).
    """
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)
    mocks = mocks or BackendMocks("eu-west-1", zones)
    pulumi.runtime.set_mocks(mocks, project="edge-vision-kit", stack=STACK, preview=preview)
    pulumi.runtime.test(build)()
    return mocks


DEFAULT_CONFIG = StackConfig(
    prefix="evktest",
    region="eu-west-1",
    alert_emails=("ops@example.com", "oncall@example.com"),
    alert_webhook_url="https://hooks.example.com/evk",
    batch_size=25,
    batching_window_s=5,
    log_retention_days=14,
)
FULL_CONFIG = StackConfig(
    prefix="evkfull",
    region="eu-central-1",
    alert_emails=("ops@example.com",),
    dashboard=DashboardConfig(
        enabled=True,
        domain="dashboard.example.com",
        certificate_arn="arn:aws:acm:eu-central-1:123456789012:certificate/abc",
    ),
    pipeline=PipelineConfig(
        enabled=True,
        repository="example/edge-vision-kit",
        backend_url="s3://evk-pulumi-state",
        secrets_key_arn="arn:aws:kms:eu-central-1:123456789012:key/secrets",
        stack="prod",
        thing_group="cameras",
    ),
)


@dataclass(frozen=True)
class StackFacts:
    """What the mocks answer with and the configs the runs use."""

    account: str = ACCOUNT
    stack: str = STACK
    layer_version: int = LAYER_VERSION
    default_config: StackConfig = DEFAULT_CONFIG
    full_config: StackConfig = FULL_CONFIG


@pytest.fixture(scope="session")
def facts() -> StackFacts:
    return StackFacts()


@pytest.fixture(scope="session")
def under_mocks():
    """``under_mocks(build)`` runs ``build`` as a Pulumi program under mocks; errors propagate."""
    return build_under_mocks


@pytest.fixture(scope="session")
def new_mocks():
    """``new_mocks()``: fresh mocks to pass to ``under_mocks`` (to see what a failed build left)."""
    return lambda: BackendMocks("eu-west-1")


@pytest.fixture(scope="session")
def run_stack():
    """``run_stack(config)`` builds the whole stack for ``config`` under mocks (a fresh run)."""
    return run_program


@pytest.fixture(scope="session")
def program_run() -> ProgramRun:
    """The stack with its defaults (edge on, no dashboard, no pipeline), e-mails and a webhook."""
    return run_program(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def full_run() -> ProgramRun:
    """The stack with the hosted dashboard and the CodePipeline."""
    return run_program(FULL_CONFIG)
