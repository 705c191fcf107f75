"""Every error mapped to its status code, in one place; each answer is {"error": one line}.

    request that does not parse or validate (JSON, fields, shape, dtype, missing file)  400
    unknown job                                                                          404
    body over the limit                                                 413 (middleware.py)
    a full queue                                                        503 + Retry-After
    anything else (a bug)                                  500, logged; the server lives on
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from atom_deploy.serve.admission import QueueFull
from atom_runner.errors import AtomError

log = logging.getLogger("atom_deploy.serve")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """The first problem as one line: 'body.clips.0.shape: Field required'."""
    problems = exc.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where}: {first.get('msg')}{more}"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error(400, validation_message(exc))

    @app.exception_handler(AtomError)
    async def bad_input(request: Request, exc: AtomError):
        return error(400, str(exc))

    @app.exception_handler(QueueFull)
    async def full(request: Request, exc: QueueFull):
        return error(503, str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
