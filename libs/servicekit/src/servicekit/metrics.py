"""Prometheus metrics servicekit records for every service."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter("oneclass_messages_handled_total", "Messages whose effect was applied", ["consumer"])
INBOX_DUPLICATES = Counter(
    "oneclass_inbox_duplicates_total", "Messages skipped because the inbox had them", ["consumer"]
)
MESSAGES_RETRIED = Counter(
    "oneclass_messages_retried_total", "Messages sent to a delay queue for a retry", ["consumer"]
)
MESSAGES_PARKED = Counter("oneclass_messages_parked_total", "Messages moved to a parking queue", ["consumer"])
CONSUMER_BATCH_SIZE = Histogram(
    "oneclass_consumer_batch_size",
    "Deliveries applied in one inbox transaction",
    ["consumer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
OUTBOX_BACKLOG = Gauge("oneclass_outbox_backlog", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge("oneclass_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")
OUTBOX_PUBLISHED = Counter("oneclass_outbox_published_total", "Outbox rows published")

# Service-specific figures the dashboard and alert rules read (deploy/observability); declared here so
# every service exports the same names.
PROVIDER_FAILOVERS = Counter(
    "oneclass_provider_failovers_total", "Messages that failed over from a provider to the next", ["channel"]
)
WEBHOOK_VERIFICATION_FAILURES = Counter(
    "oneclass_webhook_verification_failures_total", "Provider webhooks refused by verification", ["provider"]
)
INSTALLMENTS_OVERDUE = Counter("oneclass_installments_overdue_total", "Installments announced overdue")
MIGRATION_ROWS_PER_SECOND = Gauge(
    "oneclass_migration_rows_per_second", "Rows per second of the migration phase running on this worker", ["worker"]
)
