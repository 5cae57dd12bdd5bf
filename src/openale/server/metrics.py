"""Prometheus metrics of one control plane, in its own registry (apps never share counters)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

STATES = ("pending", "running", "stopped", "deleted", "failed")


class _SandboxStates:
    """Reads the store at scrape time, so the gauge can never drift from the truth."""

    def __init__(self, count_by_state: Callable[[], dict[str, int]]):
        self._count = count_by_state

    def collect(self):
        counts = self._count()
        family = GaugeMetricFamily(
            "ale_sandboxes", "Sandboxes known to the control plane, by state", labels=["state"]
        )
        for state in STATES:
            family.add_metric([state], counts.get(state, 0))
        yield family


class ServerMetrics:
    """The counters and histograms the routes update."""

    def __init__(self, count_by_state: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.registry.register(_SandboxStates(count_by_state))
        self.create_seconds = Histogram(
            "ale_sandbox_create_seconds",
            "Time to create and start a sandbox",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.commands = Counter(
            "ale_commands",
            "Commands run, by kind (exec, stream, session)",
            ["kind"],
            registry=self.registry,
        )
        self.command_errors = Counter(
            "ale_command_errors",
            "Commands that could not run or finish (refused, timed out, killed by the harness)",
            ["kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "ale_http_requests", "HTTP requests by status class", ["status"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
