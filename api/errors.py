"""Error answers: a bad parameter is a 400 naming it; an unreachable database is a 503.

Bodies keep Litestar's shape (``status_code``, ``detail``) and add ``parameter``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)

# Python parameter names whose query names differ.
QUERY_NAMES = {
    "start_time": "startTime",
    "end_time": "endTime",
    "with_seconds": "withSeconds",
    "with_stats": "withStats",
    "from_": "from",
}
_MISSING = re.compile(r"Missing required \w+ parameter '([^']+)'")


class InvalidParameter(Exception):
    """A request parameter the API cannot answer; ``parameter`` is its query name."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


def _bad_request(parameter: str | None, detail: str) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": HTTP_400_BAD_REQUEST, "detail": detail}
    if parameter is not None:
        body["parameter"] = parameter
    return Response(body, status_code=HTTP_400_BAD_REQUEST)


def invalid_parameter(_: Request[Any, Any, Any], exc: InvalidParameter) -> Response[dict[str, Any]]:
    return _bad_request(exc.parameter, str(exc))


def validation_failed(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Litestar's own parameter checks, with the parameter's query name up front."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    for problem in problems:
        if isinstance(problem, dict) and "key" in problem:
            name = QUERY_NAMES.get(str(problem["key"]), str(problem["key"]))
            return _bad_request(name, f"{name}: {problem.get('message', 'invalid')}")
    missing = _MISSING.search(exc.detail)
    if missing:
        name = QUERY_NAMES.get(missing.group(1), missing.group(1))
        return _bad_request(name, f"{name}: required")
    return _bad_request(None, exc.detail)


def database_unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("database unavailable: %s", exc)
    body = {"status_code": HTTP_503_SERVICE_UNAVAILABLE, "detail": "the database is unavailable"}
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InvalidParameter: invalid_parameter,
    ValidationException: validation_failed,
    PoolTimeout: database_unavailable,
    psycopg.OperationalError: database_unavailable,
}
