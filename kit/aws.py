"""The aws target's glue: Pulumi stack outputs → kit settings, and Cognito users.

After ``pulumi up``, ``kit aws outputs`` reads the stack's outputs (``pulumi stack output --json``
where the CLI exists, or a JSON file written by it) and writes the settings file the notebooks,
the dashboard and edge devices read: ``target: aws``, the region, every resource name, the API
URL, the Cognito ids and the SageMaker execution role (when the stack has one). Other settings
already in the file (alert e-mails, device id …) stay.

It also knows where AWS keeps its Deep Learning Containers in each region
(:func:`training_image_registry`): the training jobs run one, and the stack's SageMaker role may
pull from it.

Examples:
    >>> from kit.aws import settings_from_outputs
    >>> values = settings_from_outputs({
    ...     "region": "eu-west-1", "prefix": "demo", "api_url": "https://abc.execute-api.eu-west-1.amazonaws.com/",
    ...     "cognito_user_pool_id": "eu-west-1_Abc", "cognito_client_id": "client",
    ...     "resources": {"bucket": "demo-bucket"}})
    >>> values["target"], values["resources"]["bucket"]
    ('aws', 'demo-bucket')
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kit.core.contracts.base import contract_error
from kit.core.settings import CONFIG_FILE_NAME, ResourceNames, Settings, find_project_root

REQUIRED_OUTPUTS = (
    "region",
    "prefix",
    "api_url",
    "cognito_user_pool_id",
    "cognito_client_id",
    "resources",
)
"""Stack outputs the settings are made of (``infra/program.py`` exports them)."""
OPTIONAL_OUTPUTS = ("sagemaker_role_arn",)
"""Stack outputs that become settings when the stack has them."""
LOCAL_ONLY_SETTINGS = ("endpoint_url",)
"""Settings of the local target that would send an aws target's calls to moto: dropped."""

DLC_REGISTRIES: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
"""The account of the AWS Deep Learning Containers registry in each region of the aws, aws-cn
and aws-us-gov partitions (the SageMaker Python SDK's ``image_uri_config/pytorch.json``). A test
compares its regions with those botocore lists for SageMaker."""
DLC_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
"""The partitions with Deep Learning Containers (the isolated ones have none)."""
TRAINING_IMAGE_REPOSITORY = "pytorch-training"
"""The Deep Learning Containers repository SageMaker training jobs run (:mod:`kit.train`)."""
DATASETS_PREFIX = "datasets"
MODELS_PREFIX = "models"
TRAINING_JOBS_PREFIX = "training-jobs"
"""Where a training job's source, base model, checkpoints and output live in the bucket."""
COMPILATION_JOBS_PREFIX = "compilation-jobs"
"""Where a Neo compilation job's input and output live in the bucket."""
SAGEMAKER_READ_PREFIXES = (
    DATASETS_PREFIX,
    MODELS_PREFIX,
    TRAINING_JOBS_PREFIX,
    COMPILATION_JOBS_PREFIX,
)
"""What the stack's SageMaker execution role may read (``infra/sagemaker.py``)."""
SAGEMAKER_WRITE_PREFIXES = (TRAINING_JOBS_PREFIX, COMPILATION_JOBS_PREFIX)
"""What it may write: the jobs' checkpoints and outputs, nothing else."""


class StackOutputsError(ValueError):
    """Stack outputs cannot be read, or lack what the settings need."""


def partition_of(region: str) -> str:
    """The partition of ``region``: ``aws-cn`` (cn-*), ``aws-us-gov`` (us-gov-*) or ``aws``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def training_image_registry(region: str) -> str:
    """The ECR registry host of AWS's Deep Learning Containers in ``region``.

    Raises:
        ValueError: no Deep Learning Containers registry is known for ``region`` (an isolated
            partition, or a region newer than the kit): pass an image URI of your own.

    Examples:
        >>> training_image_registry("eu-west-1")
        '763104351884.dkr.ecr.eu-west-1.amazonaws.com'
        >>> training_image_registry("cn-north-1")
        '727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn'
    """
    account = DLC_REGISTRIES.get(region)
    if account is None:
        raise ValueError(
            f"no AWS Deep Learning Containers registry is known for region {region!r}; known: "
            f"{', '.join(sorted(DLC_REGISTRIES))}. Pass image_uri= with a training image you "
            "can pull there"
        )
    domain = "amazonaws.com.cn" if partition_of(region) == "aws-cn" else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}"


def read_stack_outputs(
    source: str | Path | Mapping[str, Any] | None = None,
    *,
    stack: str | None = None,
    cwd: Path | None = None,
    pulumi: str = "pulumi",
) -> dict[str, Any]:
    """The stack's outputs: from a mapping, a JSON file, or ``pulumi stack output --json``.

    Args:
        source: the outputs themselves, or a file holding ``pulumi stack output --json``;
            None asks the Pulumi CLI.
        stack: the stack to ask for (default: the selected one).
        cwd: the Pulumi project folder (default: the project root, found upwards).
        pulumi: the CLI executable.

    Raises:
        StackOutputsError: the file or CLI is missing, the CLI fails, or the JSON is not an object.
    """
    if isinstance(source, Mapping):
        return dict(source)
    if source is not None:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as error:
            raise StackOutputsError(f"cannot read stack outputs {path}: {error.strerror}") from None
        return _parse_outputs(text, str(path))
    executable = shutil.which(pulumi)
    if executable is None:
        raise StackOutputsError(
            f"the Pulumi CLI ({pulumi!r}) is not installed here: run "
            "`pulumi stack output --json > outputs.json` where it is, then "
            "`kit aws outputs --from outputs.json`"
        )
    command = [executable, "stack", "output", "--json"]
    if stack:
        command += ["--stack", stack]
    result = subprocess.run(
        command,
        cwd=cwd or find_project_root() or Path.cwd(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackOutputsError(
            f"`{' '.join(command[1:])}` failed ({result.returncode}): {result.stderr.strip()}"
        )
    return _parse_outputs(result.stdout, "`pulumi stack output --json`")


def _parse_outputs(text: str, origin: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise StackOutputsError(f"stack outputs from {origin} are not JSON: {error}") from None
    if not isinstance(outputs, dict):
        raise StackOutputsError(
            f"stack outputs from {origin} must be a JSON object, not {type(outputs).__name__}"
        )
    return outputs


def settings_from_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings values (target aws) held by the stack outputs.

    Raises:
        StackOutputsError: an output is missing, or the values do not make valid settings.
    """
    missing = [key for key in REQUIRED_OUTPUTS if outputs.get(key) in (None, "")]
    if missing:
        raise StackOutputsError(
            f"stack outputs lack {', '.join(missing)}; is this the Edge Vision Kit stack "
            "(infra/), and did `pulumi up` finish?"
        )
    resources = outputs["resources"]
    if not isinstance(resources, Mapping):
        raise StackOutputsError(f"stack output 'resources' must be an object, not {resources!r}")
    unknown = sorted(set(resources) - set(ResourceNames.model_fields))
    if unknown:
        raise StackOutputsError(
            f"stack output 'resources' names unknown resources {unknown}; "
            f"known: {', '.join(ResourceNames.model_fields)}"
        )
    values = {
        "target": "aws",
        "region": outputs["region"],
        "prefix": outputs["prefix"],
        "api_url": outputs["api_url"],
        "cognito_user_pool_id": outputs["cognito_user_pool_id"],
        "cognito_client_id": outputs["cognito_client_id"],
        "resources": dict(resources),
    }
    values.update({key: outputs[key] for key in OPTIONAL_OUTPUTS if outputs.get(key)})
    try:
        Settings.model_validate(values)
    except ValidationError as error:
        raise StackOutputsError(
            f"stack outputs do not make valid settings: {contract_error('Settings', error)}"
        ) from None
    return values


STACK_SETTINGS = ("api_url", "cognito_user_pool_id", "cognito_client_id")
"""Settings only the deployed stack's outputs give (:func:`settings_from_outputs`): without them
the aws target's resource names are mere defaults, which name nothing the customer owns."""


def missing_stack_settings(settings: Settings) -> list[str]:
    """The stack settings (:data:`STACK_SETTINGS`) that ``settings`` lack: empty once
    ``kit aws outputs`` wrote the deployed stack's outputs into the settings file.

    Examples:
        >>> missing_stack_settings(Settings(target="aws", api_url="https://x.example.com/"))
        ['cognito_user_pool_id', 'cognito_client_id']
    """
    return [name for name in STACK_SETTINGS if not getattr(settings, name)]


def write_settings_file(values: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``values`` into the settings file at ``path``, keeping its other settings.

    Settings that only make sense locally (``endpoint_url``) are removed, so boto3 reaches AWS.

    Raises:
        StackOutputsError: the existing file is not a YAML mapping, or the result is not valid.
    """
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise StackOutputsError(f"settings file {path} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise StackOutputsError(f"settings file {path} must hold a mapping of settings")
        existing = loaded
    merged = {k: v for k, v in existing.items() if k not in LOCAL_ONLY_SETTINGS}
    merged.update({k: v for k, v in values.items() if k != "resources"})
    merged["resources"] = {**(existing.get("resources") or {}), **values.get("resources", {})}
    try:
        Settings.model_validate(merged)
    except ValidationError as error:
        raise StackOutputsError(
            f"settings for {path} would be invalid: {contract_error('Settings', error)}"
        ) from None
    header = "# Edge Vision Kit settings; aws values written by `kit aws outputs` from the stack.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(merged, sort_keys=True))
    return path


def aws_outputs(
    source: str | Path | Mapping[str, Any] | None = None,
    *,
    write: str | Path | None = None,
    stack: str | None = None,
    cwd: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """What ``kit aws outputs [--from FILE] [--stack NAME] [--write PATH]`` does.

    Args:
        source: stack outputs (mapping or JSON file); None asks the Pulumi CLI.
        write: the settings file to write (default ``<project root>/evk.yaml``).
        stack: the Pulumi stack (when asking the CLI).
        cwd: the Pulumi project folder (when asking the CLI).

    Returns:
        The file written and the settings values taken from the stack.
    """
    values = settings_from_outputs(read_stack_outputs(source, stack=stack, cwd=cwd))
    target = Path(write) if write else (find_project_root() or Path.cwd()) / CONFIG_FILE_NAME
    return write_settings_file(values, target), values


def create_cognito_user(
    settings: Settings,
    email: str,
    *,
    temporary_password: str | None = None,
    send_invitation: bool = True,
    client: Any = None,
) -> dict[str, str]:
    """Create a dashboard/API user in the stack's user pool (only administrators can).

    Cognito e-mails the user a temporary password (unless ``send_invitation`` is False, when
    ``temporary_password`` is what you hand over); the first sign-in sets a new one.

    Raises:
        ValueError: no user pool in the settings, or ``email`` is not an e-mail address.
    """
    pool = _user_pool(settings)
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ValueError(f"{email!r} is not an e-mail address (users sign in with their e-mail)")
    if not send_invitation and not temporary_password:
        raise ValueError("without an invitation e-mail, give the temporary_password to hand over")
    cognito = client or settings.client("cognito-idp")
    request: dict[str, Any] = {
        "UserPoolId": pool,
        "Username": email,
        "UserAttributes": [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    }
    if temporary_password:
        request["TemporaryPassword"] = temporary_password
    if send_invitation:
        request["DesiredDeliveryMediums"] = ["EMAIL"]
    else:
        request["MessageAction"] = "SUPPRESS"
    user = cognito.admin_create_user(**request)["User"]
    return {"username": user["Username"], "status": user["UserStatus"]}


def sign_in(
    settings: Settings,
    email: str,
    password: str,
    *,
    new_password: str | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """Sign in to the stack's user pool; the tokens to call the control API with.

    Args:
        new_password: needed the first time (Cognito asks to replace the temporary password).

    Returns:
        Cognito's ``AuthenticationResult``: ``AccessToken``, ``IdToken``, ``RefreshToken`` …

    Raises:
        ValueError: no client id in the settings, or a new password is required but not given.
    """
    _user_pool(settings)
    if not settings.cognito_client_id:
        raise ValueError("settings have no cognito_client_id: run `kit aws outputs` first")
    cognito = client or settings.client("cognito-idp")
    answer = cognito.initiate_auth(
        ClientId=settings.cognito_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
        if not new_password:
            raise ValueError(
                f"{email} signs in for the first time: give new_password to replace the "
                "temporary one"
            )
        answer = cognito.respond_to_auth_challenge(
            ClientId=settings.cognito_client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=answer["Session"],
            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": new_password},
        )
    if "AuthenticationResult" not in answer:
        raise ValueError(
            f"sign-in for {email} needs the challenge {answer.get('ChallengeName')!r}, "
            "which the kit does not answer; sign in once through the dashboard"
        )
    return answer["AuthenticationResult"]


def refresh_sign_in(
    settings: Settings, refresh_token: str, *, client: Any = None
) -> dict[str, Any]:
    """New tokens for a signed-in user, from the refresh token :func:`sign_in` returned.

    Returns:
        Cognito's ``AuthenticationResult``: ``IdToken``, ``AccessToken``, ``ExpiresIn`` (and a
        new ``RefreshToken`` only if the pool rotates them).

    Raises:
        ValueError: no client id in the settings.
        botocore.exceptions.ClientError: Cognito refused the refresh token (expired, revoked).
    """
    if not settings.cognito_client_id:
        raise ValueError("settings have no cognito_client_id: run `kit aws outputs` first")
    cognito = client or settings.client("cognito-idp")
    answer = cognito.initiate_auth(
        ClientId=settings.cognito_client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": refresh_token},
    )
    return answer["AuthenticationResult"]


def _user_pool(settings: Settings) -> str:
    if not settings.cognito_user_pool_id:
        raise ValueError(
            "settings have no cognito_user_pool_id: deploy the stack (`pulumi up`) and run "
            "`kit aws outputs` first"
        )
    return settings.cognito_user_pool_id
