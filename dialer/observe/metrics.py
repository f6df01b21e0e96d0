"""Prometheus metrics fed from the daemon's bus (prometheus-client, one registry per daemon). Counters and
histograms count events as they happen; gauges that are state (the abandon ratio in the profile's window, live
calls, AMI reconnects) are read from the floor view when Prometheus scrapes. Names in docs/OBSERVE.md."""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from dialer.observe import events as oe
from dialer.observe.floor import LINE_STATES, FloorView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _FloorCollector:
    """State read at scrape time: abandon ratio and budget per campaign, live lines, collectors, AMI reconnects."""

    def __init__(self, floor: FloorView, source: Any):
        self.floor = floor
        self.source = source

    def collect(self):
        snap = self.floor.snapshot()
        ratio = GaugeMetricFamily("dialer_abandon_ratio", "Abandoned / answered by a person in the profile's "
                                  "abandon window", labels=["campaign"])
        limit = GaugeMetricFamily("dialer_abandon_limit", "The profile's abandon limit", labels=["campaign"])
        left = GaugeMetricFamily("dialer_abandon_budget_left", "Abandons still allowed in the window",
                                 labels=["campaign"])
        lines = GaugeMetricFamily("dialer_lines", "Live calls by state", labels=["campaign", "state"])
        waiting = GaugeMetricFamily("dialer_longest_wait_seconds", "Longest wait for a collector now",
                                    labels=["campaign"])
        for name, c in snap["campaigns"].items():
            ratio.add_metric([name], c["abandon"]["rate"])
            limit.add_metric([name], c["abandon"]["limit"])
            left.add_metric([name], c["abandon"]["budget_left"])
            waiting.add_metric([name], c["longest_wait"])
            for state in LINE_STATES:
                lines.add_metric([name, state], c["lines"][state])
        cols = GaugeMetricFamily("dialer_collectors", "Collectors by state", labels=["state"])
        for state, n in snap["collectors_by_state"].items():
            cols.add_metric([state], n)
        yield from (ratio, limit, left, lines, waiting, cols)
        ami = getattr(self.source, "ami", None)
        rc = CounterMetricFamily("dialer_ami_reconnects", "AMI connections re-established after a loss")
        rc.add_metric([], float(getattr(ami, "reconnects", 0) or 0))
        yield rc
        server = getattr(self.source, "server_id", None)
        if server:  # several servers on one store: which one this is (join on it in PromQL)
            info = GaugeMetricFamily("dialer_server_info", "This dialer server's id", labels=["server"])
            info.add_metric([str(server)], 1.0)
            yield info
        up = GaugeMetricFamily("dialer_ami_connected", "1 while the AMI connection is up")
        up.add_metric([], 1.0 if ami is not None and ami.connected.is_set() else 0.0)
        yield up


class Metrics:
    """The bus subscriber; `render()` is the /metrics body."""

    def __init__(self, floor: FloorView, source: Any):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.placed = Counter("dialer_calls_placed", "Calls placed (gate allowed, Originate taken)",
                              ["campaign", "mode"], registry=r)
        self.calls = Counter("dialer_calls", "Calls settled, by outcome", ["campaign", "outcome"], registry=r)
        self.abandoned = Counter("dialer_calls_abandoned", "Calls settled as abandoned", ["campaign"], registry=r)
        self.dispositions = Counter("dialer_dispositions", "What the bot recorded last on settled calls",
                                    ["campaign", "disposition"], registry=r)
        self.blocks = Counter("dialer_gate_blocks", "Calls the gate refused, by rule", ["campaign", "rule"],
                              registry=r)
        self.originate_errors = Counter("dialer_originate_errors", "Originates that failed", ["campaign"],
                                        registry=r)
        self.pacing = Histogram("dialer_pacing_decision_seconds", "Time to take one pacing decision",
                                ["campaign"], registry=r,
                                buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.agi = Counter("dialer_agi_sessions", "FastAGI connections by result (session, rejected, error)",
                           ["result"], registry=r)
        self.recognizer = Histogram("dialer_recognizer_seconds", "Recognizer time per utterance",
                                    ["lang", "backend"], registry=r,
                                    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0))
        self.qa_alerts = Counter("dialer_qa_alerts", "Compliance alerts raised", ["campaign", "rule"], registry=r)
        self.reconciled = Counter("dialer_calls_reconciled", "Open attempts of a previous process settled",
                                  ["source"], registry=r)
        self.live = Gauge("dialer_live_calls", "Calls the daemon follows now", registry=r)
        self.last_tick = Gauge("dialer_last_tick_timestamp_seconds",
                               "Wall-clock time the daemon's loop last went round (a stalled daemon stops it)",
                               registry=r)
        self.events = Counter("dialer_bus_events", "Events published on the daemon's bus", registry=r)
        r.register(_FloorCollector(floor, source))

    def __call__(self, event: Any) -> None:
        self.events.inc()
        if isinstance(event, oe.Tick):
            self.last_tick.set(time.time())
            self.live.set(event.live)
        elif isinstance(event, oe.CallPlaced):
            self.placed.labels(event.campaign, event.mode).inc()
        elif isinstance(event, oe.CallSettled):
            if not event.inbound:
                self.calls.labels(event.campaign, event.outcome).inc()
            if event.abandoned:
                self.abandoned.labels(event.campaign).inc()
            if event.disposition:
                self.dispositions.labels(event.campaign, event.disposition).inc()
        elif isinstance(event, oe.GateBlocked):
            self.blocks.labels(event.campaign, event.rule).inc()
        elif isinstance(event, oe.PaceDecision):
            self.pacing.labels(event.campaign).observe(event.seconds)
        elif isinstance(event, oe.AgiSession):
            self.agi.labels(event.result).inc()
        elif isinstance(event, oe.RecognizerTiming):
            self.recognizer.labels(event.lang, event.backend).observe(event.seconds)
        elif isinstance(event, oe.QaAlert):
            for rule in event.rules:
                self.qa_alerts.labels(event.campaign, rule).inc()
        elif isinstance(event, oe.OriginateFailed):
            self.originate_errors.labels(event.campaign).inc()
        elif isinstance(event, oe.CallReconciled):
            self.reconciled.labels(event.source).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
