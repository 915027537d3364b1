"""Job intervals as knobs: every interval job that declares ``JobSpec.tunable`` can be retimed
live from the chat (``/tune every:pipeline.archive 120``). The change goes through the knob
registry like any other (validated against the job's bounds, recorded, pinned, restored after a
restart) and reaches the running scheduler at once: the job's next run comes one new interval
from now, and a run in flight finishes under its budget.

    register_job_knobs(knobs, scheduler)     # knobs every:monitoring.rollup, every:pipeline.archive, ...
    knobs.adjust("every:pipeline.archive", 120, controller="operator", reason="/tune", actor="ann")
"""
from __future__ import annotations

from recovery.controllers import JobTiming
from recovery.knobs import Knob, KnobRegistry

EVERY_PREFIX = "every:"


def job_knob_name(job_id: str) -> str:
    return f"{EVERY_PREFIX}{job_id}"


def register_job_knobs(knobs: KnobRegistry, jobs: JobTiming) -> list[str]:
    """Register one knob per tunable job; returns their names."""
    names: list[str] = []
    for spec in jobs.tunable_jobs():
        assert spec.tunable is not None and spec.interval_s is not None
        low, high = spec.tunable
        job_id = spec.id

        def get(job_id: str = job_id, default: float = spec.interval_s) -> float:
            current = jobs.interval_s(job_id)
            return default if current is None else current

        def set_(value: float, job_id: str = job_id) -> None:
            jobs.retime(job_id, value)

        name = job_knob_name(job_id)
        knobs.register(Knob(name, "s", low, high, get, set_, help=f"how often the {job_id} job runs"))
        names.append(name)
    return names
