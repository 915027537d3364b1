"""Every metric name tokenwatch emits, in one place.

Each name is a constant defined with :func:`define`, which also records its kind
(``gauge``, ``counter`` or ``histogram``) and a one-line help text. A histogram's samples are
named ``<name>_bucket`` (cumulative, label ``le``, ``+Inf`` last), ``<name>_sum`` and
``<name>_count``, as Prometheus expects. ``/metrics`` uses the
registry :data:`METRICS` to type and describe the exposition; anything emitted
under a name not listed here is exposed as an ``untyped`` metric.

    from monitoring import metric_names as m
    Sample(m.PROCESS_RESIDENT_BYTES, 123_456_789.0)
    m.METRICS[m.PROCESS_RESIDENT_BYTES].help   # "Resident set size of this process"

Conventions: prefix ``tokenwatch_``; base units (seconds, bytes, ratios 0..1);
counters end in ``_total``. Labels are listed in the help text in braces.
Other packages APPEND their sections at the end of this file (never reorder).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "tokenwatch_"
Kind = Literal["gauge", "counter", "histogram"]
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a metric name means: its kind and help text."""

    name: str
    kind: Kind
    help: str


METRICS: dict[str, MetricInfo] = {}


def define(name: str, kind: Kind, help: str) -> str:
    """Register ``name`` (must start with ``tokenwatch_``) and return it.

        MY_GAUGE = define("tokenwatch_my_gauge", "gauge", "What it measures {label}")
    """
    if not name.startswith(PREFIX):
        raise ValueError(f"metric name {name!r} must start with {PREFIX!r}")
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"counter {name!r} must end with '_total'")
    existing = METRICS.get(name)
    if existing is not None and existing.kind != kind:
        raise ValueError(f"metric {name!r} already defined as {existing.kind}")
    METRICS[name] = MetricInfo(name, kind, help)
    return name


def histogram_of(sample_name: str) -> MetricInfo | None:
    """The histogram a ``<name>_bucket``/``_sum``/``_count`` sample belongs to, else ``None``.

        histogram_of(API_LATENCY_SECONDS + "_bucket").name == API_LATENCY_SECONDS
    """
    for part in HISTOGRAM_PARTS:
        if sample_name.endswith(part):
            info = METRICS.get(sample_name[: -len(part)])
            if info is not None and info.kind == "histogram":
                return info
    return None


# --- collectors framework (monitoring/collector.py) ---------------------------
COLLECTOR_ERRORS_TOTAL = define(
    "tokenwatch_collector_errors_total", "counter", "Collections that raised or timed out {collector}")
COLLECTOR_DURATION_SECONDS = define(
    "tokenwatch_collector_duration_seconds", "gauge", "Wall time of the last collection {collector}")
COLLECTOR_UP = define(
    "tokenwatch_collector_up", "gauge", "1 when the last collection succeeded, else 0 {collector}")
COLLECTOR_BAD_SAMPLES_TOTAL = define(
    "tokenwatch_collector_bad_samples_total", "counter",
    "Samples dropped for a bad name, labels or non-finite value {collector}")
COLLECTION_LAST_TIMESTAMP = define(
    "tokenwatch_collection_last_timestamp_seconds", "gauge", "Epoch seconds of the last finished collection cycle")

# --- process and host (monitoring/host/process.py) ---------------------------
PROCESS_RESIDENT_BYTES = define(
    "tokenwatch_process_resident_bytes", "gauge", "Resident set size of this process")
PROCESS_MEMORY_LIMIT_BYTES = define(
    "tokenwatch_process_memory_limit_bytes", "gauge", "Effective memory limit: min(cgroup limit, host total)")
PROCESS_MEMORY_SHARE = define(
    "tokenwatch_process_memory_share", "gauge", "Resident memory as a share (0..1) of the effective limit")
PROCESS_CPU_PERCENT = define(
    "tokenwatch_process_cpu_percent", "gauge",
    "CPU use since the previous collection in percent of ONE core (200 = two full cores)")
PROCESS_CPU_SHARE = define(
    "tokenwatch_process_cpu_share", "gauge", "CPU use as a share (0..1) of the effective cores")
PROCESS_EFFECTIVE_CORES = define(
    "tokenwatch_process_effective_cores", "gauge", "min(cgroup CPU quota, CPU affinity, cpu_count)")
PROCESS_OPEN_FDS = define(
    "tokenwatch_process_open_fds", "gauge", "Open file descriptors of this process")
PROCESS_THREADS = define(
    "tokenwatch_process_threads", "gauge", "Threads of this process")
CGROUP_MEMORY_USAGE_BYTES = define(
    "tokenwatch_cgroup_memory_usage_bytes", "gauge", "Memory charged to our cgroup (when readable)")
SYSTEM_MEMORY_TOTAL_BYTES = define(
    "tokenwatch_system_memory_total_bytes", "gauge", "Host memory total")
SYSTEM_MEMORY_AVAILABLE_BYTES = define(
    "tokenwatch_system_memory_available_bytes", "gauge", "Host memory available")
SYSTEM_MEMORY_USED_SHARE = define(
    "tokenwatch_system_memory_used_share", "gauge", "Host memory in use as a share (0..1)")

# --- event loop (monitoring/host/loop_lag.py) --------------------------------
LOOP_LAG_SECONDS = define(
    "tokenwatch_event_loop_lag_seconds", "gauge", "Last measured event-loop lag (late wake-up of a timed sleep)")
LOOP_LAG_MAX_SECONDS = define(
    "tokenwatch_event_loop_lag_max_seconds", "gauge", "Largest event-loop lag in the recent window")
LOOP_LAG_P95_SECONDS = define(
    "tokenwatch_event_loop_lag_p95_seconds", "gauge", "95th percentile event-loop lag in the recent window")

# --- database pool (monitoring/host/db_pool.py) ------------------------------
DB_UP = define("tokenwatch_db_up", "gauge", "1 when the database answered SELECT 1, else 0")
DB_PING_SECONDS = define("tokenwatch_db_ping_seconds", "gauge", "Round trip of SELECT 1")
DB_POOL_SIZE = define("tokenwatch_db_pool_size", "gauge", "Configured pool size (connections kept)")
DB_POOL_CHECKED_OUT = define("tokenwatch_db_pool_checked_out", "gauge", "Connections in use")
DB_POOL_CHECKED_IN = define("tokenwatch_db_pool_checked_in", "gauge", "Idle connections in the pool")
DB_POOL_OVERFLOW = define("tokenwatch_db_pool_overflow", "gauge", "Connections open beyond the pool size (0 when within it)")
DB_POOL_ACQUIRE_SECONDS = define(
    "tokenwatch_db_pool_acquire_seconds", "gauge", "How long the health probe waited for a pooled connection")
DB_POOL_CHECKOUTS_TOTAL = define("tokenwatch_db_pool_checkouts_total", "counter", "Connections handed out")
DB_TRANSIENT_ERRORS_TOTAL = define(
    "tokenwatch_db_transient_errors_total", "counter", "Transient database faults retried by Database.run")

# --- redis (monitoring/host/redis_health.py) ---------------------------------
REDIS_UP = define("tokenwatch_redis_up", "gauge", "1 when Redis answered PING, else 0")
REDIS_PING_SECONDS = define("tokenwatch_redis_ping_seconds", "gauge", "Round trip of PING")

# --- external API (monitoring/collectors/api.py) -----------------------------
API_LATENCY_SECONDS = define(
    "tokenwatch_api_latency_seconds", "histogram",
    "Latency of answered requests since start (timeouts are counted apart) {endpoint, le}")
API_LATENCY_BUCKET = API_LATENCY_SECONDS + "_bucket"
API_LATENCY_SUM = API_LATENCY_SECONDS + "_sum"
API_LATENCY_COUNT = API_LATENCY_SECONDS + "_count"
API_LATENCY_P95_SECONDS = define(
    "tokenwatch_api_latency_p95_seconds", "gauge",
    "Nearest-rank 95th percentile of request latency over the recent window, as /status shows it "
    "(aggregate the histogram instead) {endpoint}")
API_LATENCY_P50_SECONDS = define(
    "tokenwatch_api_latency_p50_seconds", "gauge",
    "Nearest-rank median of request latency over the recent window (for /graph api) {endpoint}")
API_LATENCY_P99_SECONDS = define(
    "tokenwatch_api_latency_p99_seconds", "gauge",
    "Nearest-rank 99th percentile of request latency over the recent window (for /graph api) {endpoint}")
API_REQUESTS_TOTAL = define("tokenwatch_api_requests_total", "counter", "Requests sent {endpoint}")
API_ERRORS_TOTAL = define("tokenwatch_api_errors_total", "counter", "Failed requests {endpoint}")
API_ERROR_RATE = define("tokenwatch_api_error_rate", "gauge", "Share (0..1) of requests that failed in the recent window {endpoint}")
API_RATE_LIMITED_TOTAL = define("tokenwatch_api_rate_limited_total", "counter", "HTTP 429 answers {endpoint}")
API_TIMEOUTS_TOTAL = define("tokenwatch_api_timeouts_total", "counter", "Requests that timed out {endpoint}")
API_CACHE_HIT_RATE = define(
    "tokenwatch_api_cache_hit_rate", "gauge", "Share (0..1) of lookups answered from cache {endpoint}")

# --- scheduler jobs (monitoring/collectors/scheduler.py) ---------------------
JOB_RUNS_TOTAL = define("tokenwatch_job_runs_total", "counter", "Finished runs {job}")
JOB_ERRORS_TOTAL = define("tokenwatch_job_errors_total", "counter", "Runs that raised {job}")
JOB_TIMEOUTS_TOTAL = define("tokenwatch_job_timeouts_total", "counter", "Runs over their time budget {job}")
JOB_MISSED_TOTAL = define("tokenwatch_job_missed_total", "counter", "Runs missed (misfire) {job}")
JOB_SKIPPED_MAX_INSTANCES_TOTAL = define(
    "tokenwatch_job_skipped_max_instances_total", "counter", "Runs skipped: previous run still going {job}")
JOB_LAST_START_TIMESTAMP = define(
    "tokenwatch_job_last_start_timestamp_seconds", "gauge", "Epoch seconds of the last start {job}")
JOB_LAST_END_TIMESTAMP = define(
    "tokenwatch_job_last_end_timestamp_seconds", "gauge", "Epoch seconds of the last end {job}")
JOB_DURATION_P50_SECONDS = define(
    "tokenwatch_job_duration_p50_seconds", "gauge", "Median run time over recent runs {job}")
JOB_DURATION_MAX_SECONDS = define(
    "tokenwatch_job_duration_max_seconds", "gauge", "Longest run time over recent runs {job}")
JOB_RUNNING_SECONDS = define(
    "tokenwatch_job_running_seconds", "gauge", "Age of the current run, 0 when idle {job}")

# --- pipeline (monitoring/pipeline/, D2): append below ------------------------
TOKENS = define("tokenwatch_tokens", "gauge", "Tracked tokens {status}")
TRANSITIONS_PER_MINUTE = define(
    "tokenwatch_transitions_per_minute", "gauge", "Status changes per minute over the rate window {from, to}")
CHECKS_PER_MINUTE = define(
    "tokenwatch_checks_per_minute", "gauge",
    "Checks of any outcome per minute over the rate window, failed fetches included (ok vs failed: "
    "tokenwatch_check_outcomes_per_minute) {status}")
PROCESSING_LAG_SECONDS = define(
    "tokenwatch_processing_lag_seconds", "gauge",
    "How late due tokens are (now - next_check_at) {status | band=hot|cold, quantile=0.5|0.95|1}")
DUE_TOKENS = define("tokenwatch_due_tokens", "gauge", "Tokens due for a check now (backlog) {band}")
OVERDUE_TOKENS = define(
    "tokenwatch_overdue_tokens", "gauge", "Due tokens late by more than one check interval of their band {band}")
STUCK_TOKENS = define(
    "tokenwatch_stuck_tokens", "gauge", "Tokens in monitoring without a successful check, or failing, too long")
ACTIVATION_SUCCESS_RATE = define(
    "tokenwatch_activation_success_rate", "gauge",
    "Share (0..1) of tokens leaving monitoring in the activation window that went to active")
ACTIVATION_CHECK_PASS_RATE = define(
    "tokenwatch_activation_check_pass_rate", "gauge",
    "Share (0..1) of evaluated monitoring checks in the activation window that passed")
TIME_TO_ACTIVATION_SECONDS = define(
    "tokenwatch_time_to_activation_seconds", "gauge",
    "Time spent in monitoring by tokens activated in the window {quantile=0.5|0.95}")
LAST_CHECK_AGE_SECONDS = define(
    "tokenwatch_last_check_age_seconds", "gauge", "Seconds since the newest check was recorded")
PIPELINE_STALLED = define(
    "tokenwatch_pipeline_stalled", "gauge",
    "1 when live tokens exist but no SUCCESSFUL check was recorded for STALL_INTERVALS intervals")
PIPELINE_STALLED_STAGE = define(
    "tokenwatch_pipeline_stalled_stage", "gauge", "1 for the stage named as stopped while stalled {stage}")
STAGE_TIME_SHARE = define(
    "tokenwatch_stage_time_share", "gauge", "Share (0..1) of recent stage time spent in each stage {stage}")
STAGE_QUEUE_SIZE = define("tokenwatch_stage_queue_size", "gauge", "Items waiting for a stage {stage}")
STAGE_LAST_RUN_AGE_SECONDS = define(
    "tokenwatch_stage_last_run_age_seconds", "gauge", "Seconds since a stage last completed work {stage}")
PIPELINE_BOTTLENECK = define(
    "tokenwatch_pipeline_bottleneck", "gauge", "1 for the stage named as the bottleneck {stage}")
POOL_DISCREPANCIES_TOTAL = define(
    "tokenwatch_pool_discrepancies_total", "counter",
    "Batch vs per-token pool data disagreements recorded {kind=missing_pool|extra_pool|liquidity_mismatch}")
POOL_VERIFICATIONS_TOTAL = define(
    "tokenwatch_pool_verifications_total", "counter", "Batch pool data cross-checked against the per-token endpoint")

# --- Telegram delivery and access (bot/metrics.py) ---------------------------
OUTBOX_PENDING = define("tokenwatch_outbox_pending", "gauge", "Outbox messages waiting to be delivered")
OUTBOX_OLDEST_PENDING_SECONDS = define(
    "tokenwatch_outbox_oldest_pending_seconds", "gauge", "Age of the oldest undelivered outbox message (0 when empty)")
OUTBOX_SENT_TOTAL = define("tokenwatch_outbox_sent_total", "counter", "Outbox messages delivered")
OUTBOX_DEAD_TOTAL = define(
    "tokenwatch_outbox_dead_total", "counter", "Outbox messages given up on (permanent errors), kept with the error")
OUTBOX_RATE_LIMITED_TOTAL = define("tokenwatch_outbox_rate_limited_total", "counter", "429s received from Telegram")
OUTBOX_TEMPORARY_ERRORS_TOTAL = define(
    "tokenwatch_outbox_temporary_errors_total", "counter", "5xx and network errors from Telegram (retried)")
OUTBOX_PLAIN_FALLBACKS_TOTAL = define(
    "tokenwatch_outbox_plain_fallbacks_total", "counter", "Messages resent as plain text after an HTML refusal")
OUTBOX_FALLBACK_POSTS_TOTAL = define(
    "tokenwatch_outbox_fallback_posts_total", "counter", "Critical messages posted to the fallback webhook")
TELEGRAM_OUTAGE_SECONDS = define(
    "tokenwatch_telegram_outage_seconds", "gauge", "How long Telegram has been unreachable (0 when reachable)")
TELEGRAM_UNAUTHORIZED = define(
    "tokenwatch_telegram_unauthorized", "gauge",
    "1 while Telegram refuses TELEGRAM_BOT_TOKEN (401) and nothing is sent; 0 otherwise")
BOT_REFUSALS_TOTAL = define(
    "tokenwatch_bot_refusals_total", "counter", "Commands and button presses refused {reason=stranger|role}")
BOT_THROTTLED_TOTAL = define("tokenwatch_bot_throttled_total", "counter", "Commands dropped by the per-user rate limit")
BOT_UNKNOWN_BUTTONS_TOTAL = define(
    "tokenwatch_bot_unknown_buttons_total", "counter", "Button presses with unknown, forged or stale data")
BOT_HANDLER_ERRORS_TOTAL = define("tokenwatch_bot_handler_errors_total", "counter", "Handlers that raised")

# --- external API, recent window (monitoring/collectors/api.py) -------------
API_WINDOW_SECONDS = define(
    "tokenwatch_api_window_seconds", "gauge", "Length of the recent window behind the API error rate and latency {endpoint}")
API_WINDOW_REQUESTS = define(
    "tokenwatch_api_window_requests", "gauge", "Requests sent in the recent window {endpoint}")
API_WINDOW_RATE_LIMITED = define(
    "tokenwatch_api_window_rate_limited", "gauge", "HTTP 429 answers in the recent window {endpoint}")
API_WINDOW_TIMEOUTS = define(
    "tokenwatch_api_window_timeouts", "gauge", "Requests that timed out in the recent window {endpoint}")

# --- pipeline counters (monitoring/collectors/pipeline_counters.py) ----------
PIPELINE_DISCOVERED_TOTAL = define(
    "tokenwatch_pipeline_discovered_total", "counter", "New tokens inserted by discovery")
PIPELINE_DISCOVERED_BY_SOURCE_TOTAL = define(
    "tokenwatch_pipeline_discovered_by_source_total", "counter", "New tokens inserted by discovery {source}")
PIPELINE_DUPLICATES_TOTAL = define(
    "tokenwatch_pipeline_duplicates_total", "counter", "Discovery events for tokens already known")
PIPELINE_GARBAGE_TOTAL = define(
    "tokenwatch_pipeline_garbage_total", "counter", "Unusable discovery messages (non-JSON, no or invalid mint)")
PIPELINE_MALFORMED_PAIRS_TOTAL = define(
    "tokenwatch_pipeline_malformed_pairs_total", "counter", "Pools skipped as malformed {reason}")
PIPELINE_CHECKS_TOTAL = define("tokenwatch_pipeline_checks_total", "counter", "Token checks written")
PIPELINE_CHECK_FAILURES_TOTAL = define(
    "tokenwatch_pipeline_check_failures_total", "counter", "Token checks whose fetch failed")
PIPELINE_BATCH_FAILURES_TOTAL = define(
    "tokenwatch_pipeline_batch_failures_total", "counter", "Batch requests that failed after their retries")
PIPELINE_TRANSITIONS_TOTAL = define(
    "tokenwatch_pipeline_transitions_total", "counter", "Token status changes {reason}")

# --- memory limit source (monitoring/host/process.py) ------------------------
PROCESS_MEMORY_LIMIT_IS_CGROUP = define(
    "tokenwatch_process_memory_limit_is_cgroup", "gauge",
    "1 when the effective memory limit is a cgroup (container) limit, 0 when it is the host's RAM")

# --- build (monitoring/collectors/build_info.py) -----------------------------
BUILD_INFO = define(
    "tokenwatch_build_info", "gauge", "Always 1; the running build {version,python}")

# --- supervised loops (app/supervisor.py; monitoring/collectors/scheduler.py LoopsCollector) --
LOOP_STATE = define(
    "tokenwatch_loop_state", "gauge",
    "1 for the loop's current state, 0 for the others {loop, state=idle|running|restarting|failed|stopped}")
LOOP_RESTARTS_TOTAL = define("tokenwatch_loop_restarts_total", "counter", "Starts after the first {loop}")
LOOP_FAILURES_TOTAL = define(
    "tokenwatch_loop_failures_total", "counter", "Runs that raised or returned unexpectedly {loop}")
LOOP_HANGS_TOTAL = define(
    "tokenwatch_loop_hangs_total", "counter", "Runs cancelled because the heartbeat stopped {loop}")
LOOP_HEARTBEAT_AGE_SECONDS = define(
    "tokenwatch_loop_heartbeat_age_seconds", "gauge", "Seconds since the loop's last heartbeat {loop}")

# --- one snapshot per cycle (monitoring/snapshot.py, monitoring/collectors/pipeline.py) ---------
CHECK_OUTCOMES_PER_MINUTE = define(
    "tokenwatch_check_outcomes_per_minute", "gauge",
    "Checks per minute over the rate window by outcome; a failed fetch is never ok {outcome=ok|failed}")
RATE_WINDOW_SECONDS = define(
    "tokenwatch_rate_window_seconds", "gauge", "The one window every per-minute rate is averaged over (RATE_WINDOW_S)")

# --- alert signals (alerts/, issue 8; emitted by monitoring/collectors/api.py, pipeline_counters.py,
#     pipeline.py) ---------------------------------------------------------------------------------
API_FAILING_SECONDS = define(
    "tokenwatch_api_failing_seconds", "gauge",
    "How long every attempt has been failing: first failure after the last good answer to the latest "
    "failure (5xx, 429, timeout, connection); 0 as soon as one answer is good {endpoint}")
API_LAST_SUCCESS_AGE_SECONDS = define(
    "tokenwatch_api_last_success_age_seconds", "gauge",
    "Seconds since the endpoint last answered (2xx, or 4xx other than 429); absent before the first {endpoint}")
DISCOVERY_SILENCE_SECONDS = define(
    "tokenwatch_discovery_silence_seconds", "gauge",
    "Seconds since discovery last saw a token (a valid mint, new or known), or since start {source}")
STUCK_TOKENS_BY_REASON = define(
    "tokenwatch_stuck_tokens_by_reason", "gauge",
    "Stuck tokens by reason {reason=quarantined|failing_checks|never_checked|no_successful_check}")

# --- market circuit breakers and timeouts (monitoring/collectors/breakers.py, issue 9) -------
CIRCUIT_STATE = define(
    "tokenwatch_circuit_state", "gauge",
    "Circuit breaker of a market endpoint: 0 closed, 1 half-open (probing), 2 open {endpoint}")
CIRCUIT_RETRY_IN_SECONDS = define(
    "tokenwatch_circuit_retry_in_seconds", "gauge",
    "Seconds until an open circuit breaker lets its next probe through, 0 otherwise {endpoint}")
CIRCUIT_OPENED_TOTAL = define(
    "tokenwatch_circuit_opened_total", "counter", "Times the circuit breaker opened (reopenings included) {endpoint}")
API_TIMEOUT_SECONDS = define(
    "tokenwatch_api_timeout_seconds", "gauge", "Request timeout in force (adaptive, RFC 6298) {endpoint}")

# --- stale pool data (monitoring/collectors/pool_cache.py, tokens/pool_cache.py, issue 9) ---------
POOL_CACHE_ENTRIES = define("tokenwatch_pool_cache_entries", "gauge", "Tokens whose last pools are kept to be served stale")
POOL_CACHE_LIFETIME_SECONDS = define(
    "tokenwatch_pool_cache_lifetime_seconds", "gauge",
    "How long pools are served without asking the market (0 unless the market is slow; knob pool_cache_s)")
POOL_CACHE_SERVED_TOTAL = define(
    "tokenwatch_pool_cache_served_total", "counter",
    "Token checks answered from cached pools {kind}: fresh (inside the lifetime) or stale (the market failed)")

# --- self-healing: memory (recovery/memory.py, issue 9) ------------------------------------------
MEMORY_BASELINE_BYTES = define(
    "tokenwatch_memory_baseline_bytes", "gauge", "Resident memory right after a young-generation garbage collection (the baseline)")
MEMORY_WARN_SHARE = define(
    "tokenwatch_memory_warn_share", "gauge",
    "The memory policy's warning threshold, a share of the effective limit (knob memory_warn_share)")
MEMORY_CRITICAL_SHARE = define(
    "tokenwatch_memory_critical_share", "gauge",
    "The memory policy's critical threshold, a share of the effective limit (knob memory_critical_share)")
MEMORY_CLEANUPS_TOTAL = define(
    "tokenwatch_memory_cleanups_total", "counter", "Memory cleanups (gc, caches, malloc_trim), whoever asked")
MEMORY_RECLAIMED_BYTES_TOTAL = define(
    "tokenwatch_memory_reclaimed_bytes_total", "counter", "Resident bytes the cleanups gave back")
MEMORY_LEAK_DIAGNOSING = define(
    "tokenwatch_memory_leak_diagnosing", "gauge",
    "1 while the post-GC baseline rises and tracemalloc snapshots look for the source, else 0")
MEMORY_LEAK_BYTES_PER_MINUTE = define(
    "tokenwatch_memory_leak_bytes_per_minute", "gauge",
    "Growth of the post-GC baseline once a leak is diagnosed (robust slope), 0 when none is")
MEMORY_LEAK_CULPRIT = define(
    "tokenwatch_memory_leak_culprit_bytes", "gauge",
    "What the last leak diagnosis saw grow, by component and top source line {component,source}")
MEMORY_STRUCTURE_SIZE = define(
    "tokenwatch_memory_structure_size", "gauge",
    "Items held by a registered cache or queue (app.memory.RECLAIMERS) {name,component,kind}")

# --- self-healing: the watchdog (recovery/watchdog.py, issue 9) ---------------------------------
WATCHDOG_RESTARTS_TOTAL = define(
    "tokenwatch_watchdog_restarts_total", "counter",
    "Restarts of a stuck job or a hung loop by the watchdog {kind=job|loop,id}")
WATCHDOG_GAVE_UP = define(
    "tokenwatch_watchdog_gave_up", "gauge",
    "1 while a job or loop is stuck and its restarts for the hour are spent (WATCHDOG_RESTARTS_PER_HOUR), "
    "else 0 {kind=job|loop,id}")

# --- self-healing: the database (recovery/slow_queries.py, issue 9) -------------------------------
DB_SLOW_QUERIES_TOTAL = define(
    "tokenwatch_db_slow_queries_total", "counter", "Statements that took longer than DB_SLOW_QUERY_S")
DB_SLOW_QUERY_SHAPES = define(
    "tokenwatch_db_slow_query_shapes", "gauge", "Distinct statement shapes in the slow-query log")
DB_SLOW_QUERY_TABLE_WALKS = define(
    "tokenwatch_db_slow_query_table_walks", "gauge",
    "Slow statement shapes whose plan walks a whole table (SCAN / Seq Scan), each with an index suggestion")

# --- several processes: leadership and the process registry (app/leadership.py, issue 11) --------
PROCESS_UP = define(
    "tokenwatch_process_up", "gauge",
    "1 while a tokenwatch process heartbeats into the registry, 0 once it stopped {role,host,pid}")
PROCESSES = define("tokenwatch_processes", "gauge", "Processes up, by role {role=leader|standby|worker}")
LEADER = define("tokenwatch_leader", "gauge", "1 while this process leads (runs the singletons), else 0")
LEADER_FENCE = define("tokenwatch_leader_fence", "gauge",
                      "The fencing token of this process's current (or last) term as leader")
LEADER_ELECTIONS_TOTAL = define("tokenwatch_leader_elections_total", "counter",
                                "Times this process became the leader")
LEADER_LOCK_UP = define("tokenwatch_leader_lock_up", "gauge",
                        "1 while the leadership lock (Redis or PostgreSQL) answers this process, else 0")
