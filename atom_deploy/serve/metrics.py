"""Prometheus metrics on a registry of the app's own (two apps in one process never clash).

    atom_requests_total{route,method,status}   answered requests
    atom_request_seconds{route}                latency histogram
    atom_queue_depth{queue}                    decode / work / jobs: admitted, not yet answered
    atom_module_loads{module}                  times each module was loaded: must stay 1
    atom_decode_group_size{kind}               requests sharing one decoder call (caption, generate)
    atom_decode_call_seconds{kind}             the decoder's time per call: its sum over a run is the decoder's busy time
    atom_encode_seconds                        the video encoder's time per clip
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("atom_requests", "answered HTTP requests", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("atom_request_seconds", "request latency", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("atom_queue_depth", "requests admitted and not yet answered", ["queue"], registry=self.registry)
        self.module_loads = Gauge("atom_module_loads", "times each module was loaded (1 when shared)", ["module"], registry=self.registry)
        self.group_size = Histogram("atom_decode_group_size", "requests sharing one decoder call", ["kind"],
                                    buckets=(1, 2, 3, 4, 6, 8, 16), registry=self.registry)
        self.call_seconds = Histogram("atom_decode_call_seconds", "decoder time per call", ["kind"],
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.encode_seconds = Histogram("atom_encode_seconds", "video encoder time per clip", buckets=LATENCY_BUCKETS,
                                        registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_group(self, kind: str, size: int, seconds: float) -> None:
        self.group_size.labels(kind).observe(size)
        self.call_seconds.labels(kind).observe(seconds)

    def watch_queue(self, name: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(name).set_function(depth)

    def watch_loads(self, loads: Callable[[], dict[str, int]], modules: list[str]) -> None:
        for module in modules:
            self.module_loads.labels(module).set_function(lambda m=module: loads().get(m, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
