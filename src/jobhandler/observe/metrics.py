"""Prometheus metrics: per-process counters and histograms from job events, and store gauges.

Counters and histograms count what this process saw (observe.py): its submits, and the runs its
worker ended. Each process exposes its own, like any Prometheus target: the API server on its
``GET /metrics``, a worker process on ``--metrics-port`` (``--processes N``: ports P to P+N-1).
Sum them across targets. The gauges about the store (jobs by queue and status, the oldest
waiting job, live workers) are read from the store when ``GET /metrics`` is scraped, with the
two cheap reads behind ``GET /queues`` and ``GET /workers``; worker ports do not repeat them.
See docs/observability.md for scraping a fleet.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from jobhandler.model.records import QueueStats, WorkerInfo
from jobhandler.observe.events import RUN_ENDS, JobEvent, Kind
from jobhandler.settings import Settings

if TYPE_CHECKING:
    from jobhandler.observe.events import Events

RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
FINISHED = tuple(kind for kind in Kind if kind in RUN_ENDS)
_SUBMITTED, _STARTED = Kind.SUBMITTED, Kind.STARTED  # an enum's attribute is slow to look up


class _Histogram:
    """Counts per bucket (the last one +Inf) and a sum: ``observe`` is a bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as Prometheus wants them: ``le`` and how many were at most that."""
        found, total = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            found.append((bound, float(total)))
        return found


class _Series:
    """What was counted of one (queue, task)."""

    __slots__ = ("finished", "run", "submitted", "wait")

    def __init__(self) -> None:
        self.submitted = 0
        self.finished = dict.fromkeys(FINISHED, 0)
        self.run = _Histogram(RUN_BUCKETS)
        self.wait = _Histogram(WAIT_BUCKETS)


class Metrics(Collector):
    """One App's job counters and histograms in this process, subscribed to its events, on a
    registry of its own with the process's CPU, memory and GC collectors.

    The numbers are plain ints kept on the event loop, and turned into metric families only
    when scraped: an event costs a dict lookup and an add or two, where prometheus_client's
    own Counter and Histogram take a lock per value (measured: bench/observe_cost.py). A scrape
    from the metrics port's thread reads them as they stand.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(self)

    def on_event(self, event: JobEvent) -> None:
        key = (event.queue, event.task)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        kind = event.kind
        if kind is _SUBMITTED:
            series.submitted += 1
        elif kind is _STARTED:
            if event.wait is not None:
                series.wait.observe(event.wait)
        else:
            series.finished[kind] += 1
            if event.duration is not None:
                series.run.observe(event.duration)

    def collect(self) -> Iterator[Metric]:
        labels = ("queue", "task")
        submitted = CounterMetricFamily(
            "jobhandler_jobs_submitted", "Jobs submitted by this process.", labels=labels
        )
        finished = CounterMetricFamily(
            "jobhandler_jobs_finished",
            "Runs this process's worker ended, by how: completed, retried, failed, timed_out,"
            " cancelled, interrupted (a graceful stop) or rescued (by the leader).",
            labels=(*labels, "status"),
        )
        run = HistogramMetricFamily(
            "jobhandler_job_run_seconds", "How long runs took, whatever their end.", labels=labels
        )
        wait = HistogramMetricFamily(
            "jobhandler_job_wait_seconds",
            "How long jobs waited, due, before a worker started them.",
            labels=labels,
        )
        for key, series in sorted(self._series.items()):
            submitted.add_metric(key, series.submitted)
            for status, count in series.finished.items():
                finished.add_metric((*key, status.value), count)
            run.add_metric(key, series.run.buckets(), series.run.sum)
            wait.add_metric(key, series.wait.buckets(), series.wait.sum)
        yield from (submitted, finished, run, wait)

    def scrape(self, store: StoreGauges, accept: str | None = None) -> tuple[bytes, str]:
        """This process's metrics and the store's gauges, in the format ``accept`` asks for;
        the body and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(_Joined(self.registry, store)), content_type


class StoreGauges(Collector):
    """The store's state at one scrape, as gauges."""

    def __init__(
        self,
        stats: list[QueueStats],
        workers: list[WorkerInfo],
        now: float,
        disk_full: bool = False,
    ) -> None:
        self.stats, self.workers, self.now = stats, workers, now
        self.disk_full = disk_full

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "jobhandler_queue_jobs",
            "Jobs in the store, by queue and status.",
            labels=("queue", "status"),
        )
        oldest = GaugeMetricFamily(
            "jobhandler_queue_oldest_waiting_seconds",
            "How long the job that has waited longest, due, has waited (0: none is due).",
            labels=("queue",),
        )
        for stat in self.stats:
            for status, count in sorted(stat.counts.items()):
                jobs.add_metric((stat.queue, status), count)
            since = stat.oldest_waiting_at
            oldest.add_metric((stat.queue,), 0.0 if since is None else max(0.0, self.now - since))
        workers = GaugeMetricFamily("jobhandler_workers", "Live workers in the registry.")
        workers.add_metric((), len(self.workers))
        disk_full = GaugeMetricFamily(
            "jobhandler_store_disk_full",
            "1 while the store refuses new work for want of disk (cancel, delete and prune"
            " still run), as this process sees it; else 0.",
        )
        disk_full.add_metric((), 1.0 if self.disk_full else 0.0)
        yield from (jobs, oldest, workers, disk_full)


class _Joined(Collector):
    def __init__(self, *parts: Collector) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


_installed: weakref.WeakKeyDictionary[Events, Metrics] = weakref.WeakKeyDictionary()


def install(events: Events) -> Metrics:
    """The metrics of an App's ``events`` in this process, subscribed on the first call."""
    found = _installed.get(events)
    if found is None:
        found = _installed[events] = Metrics()
        events.subscribe(found.on_event)
    return found


def serve(events: Events, settings: Settings) -> Callable[[], None]:
    """Serve the process metrics of an App's ``events`` on ``settings.metrics_port`` (0: not
    at all), in a thread; returns how to stop."""
    if not settings.metrics_port:
        return lambda: None
    metrics = install(events)
    server, thread = start_http_server(
        settings.metrics_port, settings.metrics_host, registry=metrics.registry
    )

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


def for_slot(settings: Settings, slot: int) -> Settings:
    """The settings of worker process ``slot`` of ``--processes N``: a metrics port of its own."""
    if not settings.metrics_port:
        return settings
    return settings.model_copy(update={"metrics_port": settings.metrics_port + slot})
