"""Prometheus metrics (prometheus_client): requests and latency by route,
and the database pool's use, read when scraped.

With several worker processes (`serve --workers N`), request counts and
latencies are kept in prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, which `serve` sets up), so whichever worker
answers a scrape reports the sum of all; the pool gauges are that worker's,
labelled with its pid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
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


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """One registry per app, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._pool_collector: PoolCollector | None = None
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
        self._pool_collector = PoolCollector(pool)
        self.registry.register(self._pool_collector)

    def exposition(self) -> bytes:
        """The text a scrape gets."""
        if not multiprocess():
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        text = generate_latest(combined)
        if self._pool_collector is not None:
            mine = CollectorRegistry()
            mine.register(_Labelled(self._pool_collector, {"pid": str(os.getpid())}))
            text += generate_latest(mine)
        return text


class _Labelled(Collector):
    """Another collector's gauges, with constant labels added."""

    def __init__(self, inner: Collector, labels: dict[str, str]) -> None:
        self._inner = inner
        self._labels = labels

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for family in self._inner.collect():
            labelled = GaugeMetricFamily(
                family.name, family.documentation, labels=list(self._labels)
            )
            for sample in family.samples:
                labelled.add_metric(list(self._labels.values()), sample.value)
            yield labelled
