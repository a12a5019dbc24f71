"""Prometheus metrics shared by the spine components (one registry per process)."""

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge(
    "cadre_outbox_backlog", "Outbox rows not yet published to Kafka", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "cadre_outbox_published_total", "Outbox rows published to Kafka", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "cadre_outbox_publish_failures_total", "Failed attempts to publish an outbox batch", ["service"]
)
CONSUMER_APPLIED = Counter(
    "cadre_consumer_events_total",
    "Events handled by an idempotent consumer",
    ["consumer", "outcome"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "cadre_consumer_batch_seconds", "Time to apply one consumed batch", ["consumer"]
)
HTTP_REQUESTS = Counter(
    "cadre_http_requests_total", "HTTP requests handled", ["service", "method", "status"]
)
