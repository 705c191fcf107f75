"""Two pure ASGI middlewares: the body limit (413) and the request metrics.

The body limit runs before routing: a declared Content-Length over the limit is refused
before any byte is read, and a chunked body is counted as it arrives and refused when it
passes the limit, so no more than the limit is ever held.
"""

from __future__ import annotations

import json
import time

from atom_deploy.serve.metrics import Metrics


def _json_response(status: int, message: str, headers: list | None = None):
    body = json.dumps({"error": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        # Read the body here, up to the limit, and replay it: the framework turns any error
        # raised while it reads into its own 400, so the limit must be settled before it runs.
        chunks, seen = [], 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            seen += len(event.get("body", b""))
            if seen > self.max_bytes:
                return await self._refuse(send)
            chunks.append(event.get("body", b""))
            if not event.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would say

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        message = f"request body over the server's limit of {self.max_bytes} bytes (--max-body-mb)"
        start, body = _json_response(413, message, [(b"connection", b"close")])
        await send(start)
        await send(body)


class RequestMetrics:
    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()
        status = 500

        async def tracked_send(event):
            nonlocal status
            if event["type"] == "http.response.start":
                status = event["status"]
            await send(event)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            # The route template (/v1/jobs/{job_id}), not the path: labels must stay a small set.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(route, scope["method"], status, time.perf_counter() - began)
