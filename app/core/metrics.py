"""Prometheus metrics (prometheus_client): requests and latency by route,
and the database pool's use, read when scraped."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PoolCollector(Collector):
    """Connections of the SQLAlchemy pool, as gauges."""

    def __init__(self, pool: Callable[[], QueuePool | None]) -> None:
        self._pool = pool

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool = self._pool()
        if pool is None:
            return
        yield GaugeMetricFamily(
            "hulian_db_pool_size", "Connections the pool keeps", value=pool.size()
        )
        yield GaugeMetricFamily(
            "hulian_db_pool_checked_out", "Connections in use", value=pool.checkedout()
        )
        yield GaugeMetricFamily(
            "hulian_db_pool_idle", "Idle connections in the pool", value=pool.checkedin()
        )
        yield GaugeMetricFamily(
            "hulian_db_pool_overflow",
            "Connections beyond the pool size",
            value=max(pool.overflow(), 0),
        )


class Metrics:
    """One registry per app, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hulian_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hulian_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch_pool(self, pool: Callable[[], QueuePool | None]) -> None:
        self.registry.register(PoolCollector(pool))
