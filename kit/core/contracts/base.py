"""Shared pieces of the message contracts: the base model, identifiers, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

SCHEMA_VERSION = "1.0"
"""Version written into every message. Readers accept any ``1.x``; a new major is a new contract."""

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,62}$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_\-]{0,31}$"
PREFIX_PATTERN = r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"
CLASS_NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,64}$"
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"

PATTERN_HELP = {
    IDENTIFIER_PATTERN: "1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit",
    MODEL_NAME_PATTERN: "1-63 characters: lower-case letters, digits, '_', '-'",
    PREFIX_PATTERN: "3-24 lower-case letters, digits, '-', starting with a letter",
    ALIAS_PATTERN: "an alias: 1-32 lower-case letters, digits, '_', '-', starting with a letter",
    CLASS_NAME_PATTERN: "1-64 characters, none of them a control character (newline, tab, ...)",
    SINGLE_LINE_PATTERN: "text without control characters (newline, tab, ...)",
}
"""Readable descriptions of the identifier patterns, used in error messages."""

Identifier = Annotated[
    str,
    StringConstraints(pattern=IDENTIFIER_PATTERN),
    Field(description=PATTERN_HELP[IDENTIFIER_PATTERN]),
]
"""Device, camera, zone, line and rule identifiers."""

ModelName = Annotated[
    str,
    StringConstraints(pattern=MODEL_NAME_PATTERN),
    Field(description=PATTERN_HELP[MODEL_NAME_PATTERN]),
]

ClassName = Annotated[
    str,
    StringConstraints(pattern=CLASS_NAME_PATTERN),
    Field(description=PATTERN_HELP[CLASS_NAME_PATTERN]),
]
"""A class name: any text a model's labels use, but one line without control characters (class
names reach alert subjects, and SNS refuses control characters there)."""

SingleLine = Annotated[
    str,
    StringConstraints(pattern=SINGLE_LINE_PATTERN),
    Field(description=PATTERN_HELP[SINGLE_LINE_PATTERN]),
]
"""Free text that may reach an alert's subject or a log line: no control characters."""

INTEGER_MAX = 2**53 - 1
"""The largest integer any contract field takes: every JSON reader (a double) holds it exactly,
and counts and thresholds stay far inside what a DynamoDB number and a float hold."""


def _a_json_number(value: Any) -> Any:
    # JSON says what a number is: true/false and "5" are not numbers, whatever Python makes of them.
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not the boolean {str(value).lower()}")
    if isinstance(value, str | bytes | bytearray):
        raise ValueError(f"must be a number, not the text {value!r}")
    return value


_NUMBER_ONLY = BeforeValidator(_a_json_number)

Integer = Annotated[int, _NUMBER_ONLY, Field(ge=-INTEGER_MAX, le=INTEGER_MAX)]
"""An integer: a JSON number with no fraction (``5`` or ``5.0``); not ``true``, not ``"5"``."""
NonNegativeInteger = Annotated[int, _NUMBER_ONLY, Field(ge=0, le=INTEGER_MAX)]
PositiveInteger = Annotated[int, _NUMBER_ONLY, Field(ge=1, le=INTEGER_MAX)]
Real = Annotated[float, _NUMBER_ONLY]
"""A finite number (every contract refuses ``NaN``, ``Infinity`` and overflowing ``1e309``)."""
NonNegativeReal = Annotated[float, _NUMBER_ONLY, Field(ge=0.0)]


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC), e.g. 2026-01-31T12:00:00Z")
    return value.astimezone(UTC)


def _timestamp_not_number(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"must be an ISO 8601 time with a timezone, e.g. 2026-01-31T12:00:00Z, not the number "
            f"{value!r}"
        )
    return value


UtcDatetime = Annotated[
    datetime, BeforeValidator(_timestamp_not_number), AfterValidator(_require_utc)
]
"""A timezone-aware timestamp (ISO 8601 text in JSON), normalised to UTC."""


def _check_schema_version(value: str) -> str:
    major = value.split(".", 1)[0]
    expected = SCHEMA_VERSION.split(".", 1)[0]
    if major != expected:
        raise ValueError(f"unsupported schema_version {value!r}; this reader accepts {expected}.x")
    return value


SchemaVersion = Annotated[
    str,
    StringConstraints(pattern=r"^\d+\.\d+$"),
    AfterValidator(_check_schema_version),
    Field(
        description=f"contract version 'major.minor'; readers accept major {SCHEMA_VERSION.split('.')[0]}"
    ),
]


def utc_now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every message: strict about unknown fields, immutable, JSON friendly.

    Numbers are finite: ``NaN``, ``Infinity`` and ``1e309`` (which JSON readers turn into
    infinity) are refused in every float field, since JSON cannot carry them back out.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class ContractError(ValueError):
    """A message did not match its contract.

    The message lists every problem as ``<Contract>.<field path>: <what is allowed> (got <value>)``.

    Attributes:
        contract: name of the contract that rejected the data.
        problems: one dict per problem with ``field``, ``value`` and ``allowed``.
    """

    def __init__(self, contract: str, problems: list[dict[str, Any]]):
        self.contract = contract
        self.problems = problems
        lines = [f"{contract}.{p['field']}: {p['allowed']} (got {p['value']})" for p in problems]
        super().__init__(f"invalid {contract}:\n  " + "\n  ".join(lines))


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


def _short_repr(value: Any, limit: int = 80) -> str:
    if isinstance(value, int) and value.bit_length() > 200:
        # repr of an integer of more than 4,300 digits raises; the size says enough.
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def contract_error(contract: str, error: ValidationError) -> ContractError:
    """Turn a pydantic ``ValidationError`` into a :class:`ContractError` with readable lines."""
    problems = []
    for item in error.errors(include_url=False):
        value = item.get("input")
        allowed = item["msg"]
        if allowed.startswith("Value error, "):
            allowed = allowed[len("Value error, ") :]
        if item["type"] == "string_pattern_mismatch":
            pattern = item.get("ctx", {}).get("pattern", "")
            allowed = "must be " + PATTERN_HELP.get(pattern, f"text matching {pattern}")
        if item["type"] == "union_tag_not_found":
            allowed = f"needs the field {item.get('ctx', {}).get('discriminator', 'kind')} to tell the message type"
        if item["type"] == "missing":
            allowed = "required"
            value_text = "nothing"
        elif item["type"] == "extra_forbidden":
            allowed = "unknown field; remove it"
            value_text = _short_repr(value)
        else:
            value_text = _short_repr(value)
        problems.append(
            {"field": _field_path(item["loc"]), "value": value_text, "allowed": allowed}
        )
    return ContractError(contract, problems)


ContractT = TypeVar("ContractT", bound=BaseModel)


def parse(contract: type[ContractT], data: Any) -> ContractT:
    """Validate ``data`` (a dict, or JSON ``str``/``bytes``) against ``contract``.

    Raises:
        ContractError: naming each bad field, its value and what is allowed.

    Examples:
        >>> from kit.core.contracts import Heartbeat, parse
        >>> parse(Heartbeat, {"device_id": "d1", "app_version": "0.1.0", "uptime_s": 3})
        ... # doctest: +ELLIPSIS
        Heartbeat(...)
    """
    try:
        if isinstance(data, str | bytes | bytearray):
            return contract.model_validate_json(data)
        return contract.model_validate(data)
    except ValidationError as error:
        raise contract_error(contract.__name__, error) from None
