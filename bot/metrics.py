"""Prometheus metrics, in one place."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

ACK_LATENCY = Histogram("flowpilot_ack_seconds", "Time to acknowledge an inbound request",
                        ["platform", "kind"], registry=REGISTRY,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5))
INBOUND = Counter("flowpilot_inbound_total", "Inbound requests", ["platform", "kind", "result"], registry=REGISTRY)
JOBS = Counter("flowpilot_jobs_total", "Job attempts by outcome", ["kind", "outcome"], registry=REGISTRY)
JOB_DEPTH = Gauge("flowpilot_jobs_depth", "Jobs by status", ["status"], registry=REGISTRY)
JOB_AGE = Gauge("flowpilot_jobs_oldest_age_seconds", "Age of the oldest job by status", ["status"], registry=REGISTRY)
OUTBOX = Counter("flowpilot_outbox_total", "Outbox delivery attempts by outcome", ["platform", "outcome"],
                 registry=REGISTRY)
OUTBOX_DEPTH = Gauge("flowpilot_outbox_depth", "Outbox rows by status", ["status"], registry=REGISTRY)
OUTBOX_AGE = Gauge("flowpilot_outbox_oldest_age_seconds", "Age of the oldest outbox row by status", ["status"],
                   registry=REGISTRY)
OUTBOX_LAG = Histogram("flowpilot_outbox_lag_seconds", "Commit-to-delivery lag", ["platform"], registry=REGISTRY)
TOKENS = Counter("flowpilot_model_tokens_total", "Model tokens", ["task", "model", "kind"], registry=REGISTRY)
MODEL_CALLS = Counter("flowpilot_model_calls_total", "Model calls", ["task", "model"], registry=REGISTRY)
ESCALATIONS = Counter("flowpilot_escalation_funnel_total", "Escalation funnel", ["stage"], registry=REGISTRY)
CLAIM_SECONDS = Gauge("flowpilot_escalation_time_to_claim_seconds", "Time to claim (p50/p90, 7d/30d)",
                      ["quantile", "window"], registry=REGISTRY)
FIRST_ACTION_SECONDS = Gauge("flowpilot_escalation_time_to_first_action_seconds",
                             "Post-claim time to first action (p50/p90, 7d/30d)", ["quantile", "window"],
                             registry=REGISTRY)


class PrometheusUsageRecorder:
    """core.ports.UsageRecorder → token counters by task."""

    def record(self, task: str, model: str, usage) -> None:
        MODEL_CALLS.labels(task, model).inc()
        TOKENS.labels(task, model, "input").inc(usage.input_tokens)
        TOKENS.labels(task, model, "output").inc(usage.output_tokens)
        TOKENS.labels(task, model, "cache_read").inc(usage.cache_read_input_tokens)
        TOKENS.labels(task, model, "cache_creation").inc(usage.cache_creation_input_tokens)
