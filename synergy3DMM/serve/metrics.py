"""The service's Prometheus metrics, in a registry of its own (one per application, so
that several applications in one process, as in tests, do not mix). With `--workers N`
each process counts its own requests: a scrape sees the process that answers it."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServiceMetrics:
    """Requests by route and status, their latency, faces found, faces per regressor batch,
    and the requests waiting for a thread. The service's `Listener`
    (`synergy3DMM.serve.service`)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("synergynet_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("synergynet_request_seconds", "Time from a request's arrival to its answer",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.faces = Counter("synergynet_faces", "Faces found in the photos analysed", registry=self.registry)
        self.batch = Histogram("synergynet_batch_faces", "Faces per regressor batch (requests batched together)",
                               buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue = Gauge("synergynet_queue_length", "Requests admitted and waiting for a thread",
                           registry=self.registry)

    def batch_ran(self, faces: int) -> None:
        self.batch.observe(faces)

    def faces_found(self, faces: int) -> None:
        self.faces.inc(faces)

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
