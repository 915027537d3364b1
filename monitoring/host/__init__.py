"""Host-level readings: cgroup limits, this process, the event loop, the DB pool, Redis."""
