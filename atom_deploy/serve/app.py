"""create_app: the FastAPI app around an opened ServerState.

The state is opened before the app (atom-deploy serve opens it first, so a bad artifact
folder is one error line, not a server that starts and dies); the lifespan closes it
after uvicorn has drained the in-flight requests on SIGTERM.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from atom_deploy.serve import errors, routes_jobs, routes_ops, routes_tasks
from atom_deploy.serve.middleware import BodyLimit, RequestMetrics
from atom_deploy.serve.state import ServerState


def create_app(state: ServerState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(state.close)  # jobs stop at a clip boundary, queued decodes finish

    app = FastAPI(
        title="atom-deploy serve", version="1", lifespan=lifespan,
        description="One resident Session (video encoder, decoder, MiniLM, each loaded once) serving every task.",
    )
    app.state.atom = state
    errors.install(app)
    for module in (routes_tasks, routes_jobs, routes_ops):
        app.include_router(module.router)
    # Added last = outermost: metrics see every answer, the 413s included.
    app.add_middleware(BodyLimit, max_bytes=state.config.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=state.metrics)
    return app
