"""atom-deploy serve: hold the modules resident and serve every task over HTTP (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=__doc__.split(": ", 1)[1],
                       description="Endpoints, encodings and examples: docs/serve.md; the OpenAPI page is at /docs.")
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", default=None, help="executorch or onnx (default: the folder's; in an export root, executorch if exported)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--index", type=Path, default=None, help="the SQLite index for search, index and assemble")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body; larger ones get 413 (default 16)")
    p.add_argument("--queue-limit", type=int, default=64,
                   help="decoder requests admitted and not yet answered; beyond it 503 + Retry-After (default 64)")
    p.add_argument("--work-limit", type=int, default=64, help="other requests (embed, search, ...) admitted at once (default 64)")
    p.add_argument("--threads", type=int, default=None, help="runtime threads per module (default: the runtime's)")
    p.add_argument("--decoder-lanes", type=int, default=None,
                   help="decoder groups decoded at once, each with its own KV cache (default 2 on ONNX, whose cache "
                        "the runner holds; ExecuTorch keeps its cache in the program: 1)")
    p.add_argument("--no-batching", action="store_true",
                   help="one request per decoder call instead of shared decode steps (to measure what batching gives)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from atom_deploy.serve.app import create_app
    from atom_deploy.serve.config import ServeConfig
    from atom_deploy.serve.metrics import Metrics
    from atom_deploy.serve.state import ServerState

    config = ServeConfig(
        artifacts=args.artifacts, backend=args.backend, host=args.host, port=args.port, index=args.index,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024), decode_queue_limit=args.queue_limit,
        work_queue_limit=args.work_limit, threads=args.threads, decode_batching=not args.no_batching,
        decoder_lanes=args.decoder_lanes,
    )
    state = ServerState.open(config, Metrics())  # a bad folder or index: one error line, before listening
    try:
        sock = _listen(config.host, config.port)
    except BaseException:
        state.close()
        raise
    host, port = sock.getsockname()[:2]
    print(f"atom-deploy serve: {state.label} on http://{host}:{port} (API docs: /docs)", file=sys.stderr, flush=True)
    # uvicorn owns SIGINT/SIGTERM: stop accepting, finish in-flight requests, then the lifespan closes the
    # state. Afterwards it restores the handler it found and raises the signal again: with this one there,
    # a drained stop exits 0, as a finished command does.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one error line (and --port 0 picks one)."""
    from atom_runner.errors import AtomError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise AtomError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
