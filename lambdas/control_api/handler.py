"""Control-API Lambda: API Gateway HTTP API (payload v2) events routed by Powertools.

Routes are exactly :data:`kit.core.backend.CONTROL_API_ROUTES` (``infra/`` creates the same ones);
each is a few lines over :mod:`lambdas.control_api.service` and :mod:`lambdas.store`. Every route
but ``GET /health`` needs an identity (:mod:`lambdas.control_api.auth`). Request bodies are read
by :mod:`lambdas.control_api.body` (413 over 1 MiB, 400 for anything but a JSON object). Errors
answer ``{"error", "message", "field"?, "allowed"?, "value"?, "problems"?}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from kit.core import __version__ as kit_version
from kit.core.contracts import utc_now
from kit.core.registry import RegistryReader
from kit.core.timefmt import stamp
from lambdas import runtime
from lambdas.control_api import params, service
from lambdas.control_api.auth import user_from_event
from lambdas.control_api.body import request_json
from lambdas.control_api.errors import ApiError
from lambdas.health import describe_device
from lambdas.store import BadCursorError

logger = Logger(service="control-api")
app = APIGatewayHttpResolver()

PUBLIC_ROUTES = frozenset({"GET /health"})
ALERT_STATES = ("OPEN", "ACKED", "RESOLVED")
FRAME_URL_EXPIRY_S = 900
ROUTES: dict[str, Callable[..., Any]] = {}
"""Route key (``"GET /config/{camera}"``) -> function; a test checks it equals CONTROL_API_ROUTES."""


def route(key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function for an API Gateway route key such as ``"GET /config/{camera}"``."""
    method, path = key.split(" ", 1)

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES[key] = function
        return app.route(re.sub(r"\{(\w+)\}", r"<\1>", path), method=method)(function)

    return register


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


@app.exception_handler(ApiError)
def _api_error(error: ApiError) -> Response:
    return _json(error.status, error.body(), error.headers)


@app.exception_handler(BadCursorError)
def _bad_cursor(error: BadCursorError) -> Response:
    cursor = _query().get("cursor")
    return _api_error(ApiError.bad_field("cursor", cursor, f"{error}; omit it for the first page"))


@app.not_found
def _no_route(_: Exception) -> Response:
    event = app.current_event
    known = ", ".join(sorted(ROUTES))
    return _json(
        404,
        {
            "error": "not_found",
            "message": f"no route {event.http_method} {event.path}; routes: {known}",
        },
    )


def _require_user(
    app: APIGatewayHttpResolver, next_middleware: Callable[..., Response]
) -> Response:
    matched = app.context.get("_route")
    key = f"{matched.method} {matched.openapi_path}" if matched else None
    if key not in PUBLIC_ROUTES:
        user = user_from_event(app.current_event.raw_event, runtime.services().settings)
        app.append_context(user=user)
        logger.append_keys(user=user)
    return next_middleware(app)


app.use(middlewares=[_require_user])


def _query() -> dict[str, str]:
    return app.current_event.query_string_parameters or {}


def _user() -> str:
    return app.context["user"]


def _if_match() -> int | None:
    return params.revision(app.current_event.headers.get("if-match"))


@route("GET /health")
def health() -> dict[str, Any]:
    settings = runtime.services().settings
    return {
        "status": "ok",
        "target": settings.target,
        "version": kit_version,
        "time": stamp(utc_now()),
    }


@route("GET /config")
def get_config() -> Response:
    """The config the backend runs with; while the stored one is invalid, the last good one, with
    headers naming the invalid revision and its problem."""
    read = runtime.services().store.read_config()
    return _json(200, read.config.model_dump(mode="json"), service.rejected_config_headers(read))


@route("PUT /config")
def put_config() -> dict[str, Any]:
    body = request_json(app.current_event.raw_event)
    config = service.replace_config(runtime.services(), body, who=_user(), if_match=_if_match())
    return config.model_dump(mode="json")


@route("GET /config/{camera}")
def get_camera_config(camera: str) -> Response:
    camera_id = params.identifier(camera, "camera")
    services = runtime.services()
    read = services.store.read_config()
    settings = service.camera_config(services, camera_id, read)
    return _json(200, settings, service.rejected_config_headers(read))


@route("PUT /config/{camera}")
def put_camera_config(camera: str) -> dict[str, Any]:
    camera_id = params.identifier(camera, "camera")
    body = request_json(app.current_event.raw_event)
    services = runtime.services()
    service.replace_camera(services, camera_id, body, who=_user(), if_match=_if_match())
    return service.camera_config(services, camera_id)


@route("GET /models")
def get_models() -> dict[str, Any]:
    name = _query().get("name") or None
    services = runtime.services()
    registry = RegistryReader(services.s3, services.settings.resources.bucket)
    listing = registry.listing(name)
    if name and not listing.models:
        others = registry.listing().names
        raise ApiError(
            404,
            f"no model named {name!r} in the registry; models: {', '.join(others) or 'none'}",
            field="name",
            value=name,
        )
    return {
        "items": [m.model_dump(mode="json") for m in listing.models],
        "problems": listing.problems,
    }


@route("GET /cameras")
def get_cameras() -> dict[str, Any]:
    return {"items": service.list_cameras(runtime.services())}


@route("GET /devices")
def get_devices() -> dict[str, Any]:
    now = utc_now()
    devices = runtime.services().store.list_devices()
    return {"items": [describe_device(device, now) for device in devices], "time": stamp(now)}


@route("GET /detections")
def get_detections() -> dict[str, Any]:
    query = _query()
    camera_id = params.identifier(query.get("camera"), "camera")
    since, until = params.timestamp(query, "since"), params.timestamp(query, "until")
    if since and until and until <= since:
        raise ApiError.bad_field("until", query["until"], f"a time after since ({query['since']})")
    limit = params.integer(query, "limit", default=100, low=1, high=1000)
    order = params.choice(query, "order", ("desc", "asc"), "desc")
    services = runtime.services()
    service.require_camera(services, camera_id)
    page = services.store.query_detections(
        camera_id,
        since=since,
        until=until,
        limit=limit,
        cursor=query.get("cursor"),
        newest_first=order == "desc",
    )
    return {"items": page.items, "cursor": page.cursor}


@route("GET /alerts")
def get_alerts() -> dict[str, Any]:
    query = _query()
    state = params.choice(query, "state", ALERT_STATES, None)
    camera_id = params.identifier(query.get("camera"), "camera", required=False)
    limit = params.integer(query, "limit", default=50, low=1, high=500)
    services = runtime.services()
    if camera_id is not None:
        service.require_camera(services, camera_id)
    page = services.store.query_alerts(
        state=state, camera_id=camera_id, limit=limit, cursor=query.get("cursor")
    )
    return {"items": [service.alert_json(a) for a in page.items], "cursor": page.cursor}


@route("POST /alerts/{id}/ack")
def post_ack(id: str) -> dict[str, Any]:  # the route's parameter is named "id"
    return service.acknowledge(runtime.services(), id, who=_user())


@route("GET /frames/latest")
def get_latest_frame() -> dict[str, Any]:
    camera_id = params.identifier(_query().get("camera"), "camera")
    return service.latest_frame(runtime.services(), camera_id, FRAME_URL_EXPIRY_S)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
