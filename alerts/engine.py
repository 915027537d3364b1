"""The incident engine: observations become alert states, incidents and Telegram messages.

    engine = AlertEngine(db, clock, settings, rules, outbox, alert_chat_id=-100123,
                         mutes=quiet, buttons=bot_buttons, silencer=quiet.silence,
                         remediations={"pipeline.restart": restart_pipeline}, measure=measure_memory)
    await engine.start()                      # loads states and open incidents; timers resume
    await engine.observe(observations, now)   # once per evaluation cycle
    await engine.tick(now)                    # timers: resolution, escalation, ack lapse (jobs())
    await engine.acknowledge(12, Actor(42, "Ann"))   # IncidentService (alerts/api.py)

Per series (a rule and one label set, by fingerprint): pending -> firing after the rule's
``for`` (its ``maintenance.for`` while a maintenance window is on) -> resolved after
``keep_firing_for`` of clear readings, checked on every tick (not at the next evaluation).
A series that changes state ``ALERT_FLAP_CHANGES`` times within ``ALERT_FLAP_WINDOW_S`` is
flapping: it stays in its incident, shown once as flapping, until ``ALERT_FLAP_SETTLE_S``
pass without a change.

Incidents group the firing series of one rule ``group``; a series whose ``depends_on`` rule
fires is folded under that root cause's incident (an edit, no ping). One message per
incident (outbox key ``alert:<id>:<opened>``), edited in place; a new short message (a ping)
only when an incident opens, an unrelated rule joins, it escalates (or re-arms, or an
acknowledgment lapses) and when it resolves. Muted series (``MutePolicy``) are recorded
as events, not sent. Every change is an ``alert_event`` (kinds: :data:`EVENT_KINDS`).

Escalation: one chain per severity (``alerts/escalation.py``) for unacknowledged, announced,
unmuted incidents. Every scheduled step carries the incident's ``timer_token``; a step whose
token changed since it was scheduled (an ack, a re-arm, a silence) does nothing.
"""
from __future__ import annotations

import asyncio
import heapq
import json
import logging
import string
import sys
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from app.clock import Clock
from app.db import Database
from app.durations import fmt_duration
from app.memory import RECLAIMERS, Reclaimers
from app.scheduler import JobSpec
from app.settings import Settings
from alerts import render
from alerts.api import (NO_BUTTONS, ActionResult, Actor, ButtonFactory, IncidentView, MemberView,
                        TimelineEntry)
from alerts.escalation import Step, gap_before, parse_chain
from alerts.models import (ACKNOWLEDGED, CLOSED, FIRING, OPEN, PENDING, RESOLVED, AlertEvent, AlertIncident,
                           AlertState)
from alerts.observation import Observation
from alerts.policy import NEVER_MUTED, MutePolicy
from alerts.rules import SEVERITY_RANK, Remediation, Rule, RuleSet
from alerts.store import AlertStore
from alerts.units import fmt_unit
from delivery.models import CRITICAL, INFO, WARNING
from delivery.store import Outbox
from delivery.webhook import WebhookPoster
from recovery.ledger_queries import ActionView, actions_between

log = logging.getLogger(__name__)

EVENT_KINDS = (
    "pending",      # series: condition true, waiting for `for`
    "cleared",      # series: condition false again before it fired (or a cleanup brought it under)
    "fired",        # series: firing, in incident_id
    "folded",       # series: a consequence folded under its root cause's incident (detail: root rule)
    "resolved",     # series: clear for keep_firing_for
    "flapping",     # series: changing state too often; one state until it settles
    "settled",      # series: no longer flapping
    "cleanup",      # series: memory reclaimed before firing (detail: before -> after)
    "opened",       # incident opened (rule: the first series' rule)
    "closed",       # incident resolved (detail: how long, what happened meanwhile)
    "muted",        # a notification not sent (detail: why: silence, maintenance...)
    "notified",     # out-of-band notice (log, console, fallback webhook)
    "ack",          # acknowledged (actor)
    "ack_lapsed",   # acknowledgment ran out; reminder sent, escalation re-armed
    "rearmed",      # severity rose above the acknowledged one
    "escalated",    # an escalation step ran (detail: step, action, why)
    "webhook",      # result of an escalation webhook POST
    "silenced",     # Silence button (value: silence end)
    "unsilenced",   # that silence ended; escalation resumes
    "remediation",  # a remediation button ran (detail: outcome)
)
# Details' timeline also lists the recovery layer's actions while the incident was open (kind
# "action", from the action ledger, not stored as events); the resolved message names them.

PRIORITY = {"critical": CRITICAL, "warning": WARNING, "info": INFO}
EDIT_EVERY_S = 5.0            # evaluation-driven edits of one incident message at most this often
DOUBLE_TAP_S = 30.0           # a second Escalate / remediation press within this is a double tap
CLOSED_CACHE = 200            # recently closed incidents kept in memory for get()
MEANWHILE_ACTIONS = 3         # automatic actions named in a resolved message (the rest counted)
HOLD_GRACE_S = 60.0           # a consequence waits for a pending root cause at most its `for` plus this

Remediator = Callable[[], Awaitable[str]]
"""A remediation action: does something, returns one plain-text line saying what happened."""
Silencer = Callable[[str, float, str, Actor], Awaitable[ActionResult]]
"""``QuietService.silence(matchers, duration_s, reason, actor)``."""
Measure = Callable[[Rule, Mapping[str, str]], Awaitable[float | None]]
"""Measure a rule's series again now (memory after a cleanup); None when it cannot."""


class _Fmt(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def render_summary(rule: Rule, labels: Mapping[str, str], context: Mapping[str, str],
                   value: float | None, threshold: float) -> str:
    """The rule's summary template filled in (plain text; unknown placeholders become ``?``)."""
    values = _Fmt({k: str(v) for k, v in labels.items()})
    values.update({k: str(v) for k, v in context.items()})
    values["value"] = fmt_unit(value, rule.unit)
    values["threshold"] = fmt_unit(threshold, rule.unit)
    try:
        return string.Formatter().vformat(rule.summary, (), values)
    except (ValueError, IndexError, KeyError, AttributeError):
        return rule.summary


class AlertEngine:
    """Implements ``alerts.api.IncidentService``. All state changes run under one lock."""

    def __init__(self, db: Database, clock: Clock, settings: Settings, rules: RuleSet, outbox: Outbox, *,
                 alert_chat_id: int | None = None, mutes: MutePolicy = NEVER_MUTED,
                 buttons: ButtonFactory = NO_BUTTONS, silencer: Silencer | None = None,
                 remediations: Mapping[str, Remediator] | None = None, measure: Measure | None = None,
                 reclaimers: Reclaimers = RECLAIMERS, poster: WebhookPoster | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.rules = rules
        self.outbox = outbox
        self.store = AlertStore(db)
        self.alert_chat_id = alert_chat_id if alert_chat_id is not None else settings.telegram_alert_chat_id
        self.mutes = mutes
        self.buttons = buttons
        self.silencer = silencer
        self.remediations: dict[str, Remediator] = dict(remediations or {})
        self.measure = measure
        self.reclaimers = reclaimers
        self.poster = poster or WebhookPoster(timeout_s=5.0)
        self.chains: dict[str, tuple[Step, ...]] = {
            "info": parse_chain(settings.alert_escalation_info, setting="ALERT_ESCALATION_INFO"),
            "warning": parse_chain(settings.alert_escalation_warning, setting="ALERT_ESCALATION_WARNING"),
            "critical": parse_chain(settings.alert_escalation_critical, setting="ALERT_ESCALATION_CRITICAL"),
        }
        self.states: dict[str, AlertState] = {}
        self.incidents: dict[int, AlertIncident] = {}        # open and acknowledged
        self.members: dict[int, set[str]] = {}               # incident -> fingerprints shown in it
        self._closed: dict[int, AlertIncident] = {}
        self._context: dict[str, Mapping[str, str]] = {}
        self._threshold: dict[str, float] = {}
        self._value: dict[str, float] = {}                   # the latest reading per series
        self._timers: list[tuple[float, int, int, int, str]] = []   # (due, seq, incident, token, kind)
        self._seq = 0
        self._fires: dict[str, deque[float]] = {}
        self._boosted: dict[str, float] = {}
        self._silenced_until: dict[int, float] = {}
        self._presses: dict[tuple[int, str], tuple[str, float]] = {}
        self._dependents: dict[str, set[str]] = {}
        for r in rules:
            for dep in r.depends_on:
                self._dependents.setdefault(dep, set()).add(r.name)
        self._firing: dict[str, set[str]] = {}               # rule -> its firing series
        self._labels_cache: dict[str, dict[str, str]] = {}
        self._last_edit: dict[int, float] = {}
        self._edit_due: set[int] = set()
        self._merged: dict[int, int] = {}                    # incident -> the root cause's it moved into
        self._dirty_states: set[str] = set()
        self._dirty_incidents: set[int] = set()
        self._events: list[AlertEvent] = []
        self._posts: list[tuple[int, str, dict[str, Any]]] = []     # (incident, url, payload)
        self._aftermath: dict[str, float] = {}               # released consequence -> fires on its own from
        self._released_into: set[int] = set()                # incidents a released consequence moved to
        self._root_resolved_at: dict[str, float] = {}        # root-cause rule -> when a series of it last resolved
        self._lock = asyncio.Lock()
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load every series and open incident; resume timers; finish what a crash interrupted."""
        now = self.clock.time()
        async with self._lock:
            # a second start (this process takes over as the leader) reloads from scratch
            self._timers, self._fires, self._firing, self._silenced_until = [], {}, {}, {}
            self._edit_due, self._dirty_states, self._dirty_incidents = set(), set(), set()
            self.states = {s.fingerprint: s for s in await self.store.load_states()}
            self.incidents = {i.id: i for i in await self.store.load_open_incidents() if i.id is not None}
            self.members = {iid: set() for iid in self.incidents}
            for st in self.states.values():
                if st.state == FIRING:
                    self._firing.setdefault(st.rule, set()).add(st.fingerprint)
                if st.incident_id in self.members:
                    self.members[st.incident_id].add(st.fingerprint)
            window = self.settings.alert_repeat_window_s
            for rule, at in await self.store.fires_since(now - window):
                self._fires.setdefault(rule, deque()).append(at)
            for ev in await self.store.events_of_kind("silenced", now - 30 * 86400):
                if ev.incident_id in self.incidents and ev.value is not None:
                    self._silenced_until[ev.incident_id] = ev.value
            for inc in self.incidents.values():
                assert inc.id is not None
                if inc.status == OPEN and inc.next_escalation_at is not None:
                    self._push(inc.next_escalation_at, inc, "escalate")
                if inc.status == ACKNOWLEDGED and inc.ack_until is not None:
                    self._push(inc.ack_until, inc, "ack_lapse")
            # interrupted work: an incident queued but not announced, or left without members
            touched = {iid for iid, inc in self.incidents.items()
                       if (not inc.announced and inc.muted_reason is None) or not self._active(iid)}
            await self._reconcile(touched, now, opened=set(), pings={})
            await self._flush()
            self._started = True
        await self._post_webhooks()
        log.info("alert engine started: %d series, %d open incidents", len(self.states), len(self.incidents))

    def jobs(self) -> list[JobSpec]:
        """The timer tick (resolution after keep_firing_for, escalation steps, ack lapses)."""
        return [JobSpec("alerts.tick", self.tick_now, interval_s=self.settings.alert_tick_s, budget_s=60.0)]

    async def tick_now(self) -> None:
        await self.tick(self.clock.time())

    async def close(self) -> None:
        await self.poster.close()

    # ------------------------------------------------------------------ input

    async def observe(self, observations: Iterable[Observation], now: float) -> None:
        """Apply one evaluation cycle's observations."""
        async with self._lock:
            changed: set[int] = set()
            opened: set[int] = set()
            pings: dict[int, list[tuple[str, str]]] = {}
            boosts: list[tuple[str, str]] = []
            for obs in observations:
                rule = self.rules.get(obs.rule)
                if rule is None:
                    continue
                transition = await self._step(rule, obs, now)
                if transition is None:
                    continue
                st = self.states[obs.fingerprint]
                if transition == "fired":
                    await self._attach(st, rule, now, changed, opened, pings, boosts)
                elif transition == "resolved":
                    if st.incident_id is not None:
                        changed.add(st.incident_id)
            changed |= self._released_into
            self._released_into = set()
            await self._reconcile(changed, now, opened, pings)
            for rule_name, fp in boosts:
                await self._boost(rule_name, fp, now)
            await self._flush()
        await self._post_webhooks()

    async def tick(self, now: float) -> None:
        """Timers: series clear for keep_firing_for resolve; flapping settles; escalation steps and
        ack lapses whose time came (and whose timer token still holds); silences that ended."""
        async with self._lock:
            changed: set[int] = set()
            for iid in list(self.incidents):
                for fp in list(self.members.get(iid, ())):
                    st = self.states[fp]
                    rule = self.rules.get(st.rule)
                    if rule is None:
                        continue
                    if (st.state == FIRING and st.clear_since is not None
                            and now - st.clear_since >= rule.keep_firing_for_s):
                        self._resolve_series(st, now)
                        changed.add(iid)
                        changed |= self._released_into
                        self._released_into = set()
                    if st.flapping and self._last_change(st) is not None \
                            and now - (self._last_change(st) or now) >= self.settings.alert_flap_settle_s:
                        st.flapping = False
                        self._dirty_states.add(fp)
                        self._event("settled", now, st, detail=f"settled as {st.state}")
                        changed.add(iid)
            for iid, until in list(self._silenced_until.items()):
                inc = self.incidents.get(iid)
                if inc is None:
                    self._silenced_until.pop(iid, None)
                elif now >= until:
                    self._silenced_until.pop(iid, None)
                    inc.muted_reason = None
                    self._event("unsilenced", now, incident=inc, detail="silence ended; escalation resumes")
                    self._arm(inc, now)
                    changed.add(iid)
            await self._reconcile(changed, now, opened=set(), pings={})
            for iid in list(self._edit_due):
                inc = self.incidents.get(iid)
                if inc is None:
                    self._edit_due.discard(iid)
                else:
                    await self._edit(inc, now, soon=True)
            while self._timers and self._timers[0][0] <= now:
                _, _, iid, token, kind = heapq.heappop(self._timers)
                await self.run_timer(iid, token, kind, now)
            await self._flush()
        await self._post_webhooks()

    async def run_timer(self, incident_id: int, token: int, kind: str, now: float) -> bool:
        """Run one scheduled step (``escalate`` or ``ack_lapse``) if its token still holds.
        Returns False (and does nothing) for a stale timer. Called by :meth:`tick` under the lock."""
        inc = self.incidents.get(incident_id)
        if inc is None or inc.timer_token != token:
            return False
        if kind == "escalate":
            if inc.status != OPEN or inc.next_escalation_at is None or now < inc.next_escalation_at:
                return False
            await self._escalate_step(inc, now, Actor.system(), "unacknowledged")
            return True
        if kind == "ack_lapse":
            if inc.status != ACKNOWLEDGED or inc.ack_until is None or now < inc.ack_until:
                return False
            await self._lapse(inc, now)
            return True
        return False

    # ------------------------------------------------------------------ series

    def _for_s(self, rule: Rule, now: float) -> float:
        if rule.maintenance is not None and rule.maintenance.for_s is not None and self.mutes.in_maintenance(now):
            return rule.maintenance.for_s
        return rule.for_s

    async def _step(self, rule: Rule, obs: Observation, now: float) -> str | None:
        fp = obs.fingerprint
        st = self.states.get(fp)
        if st is None:
            if not (obs.breached and obs.value is not None):
                return None        # a healthy series never seen breached needs no row
            st = AlertState(fingerprint=fp, rule=rule.name, labels_json=json.dumps(dict(obs.labels), sort_keys=True),
                            severity=rule.severity, state=RESOLVED)
            self.states[fp] = st
            self._dirty_states.add(fp)
        breached = obs.breached and obs.value is not None
        # plain dicts, not the row: setting a SQLModel attribute per reading is the costly part
        if obs.value is not None:
            self._value[fp] = obs.value
        self._context[fp] = obs.context
        self._threshold[fp] = obs.threshold
        if st.state == RESOLVED:
            if not breached:
                return None
            st.state, st.active_since, st.clear_since = PENDING, now, None
            st.last_value, st.last_eval_at = obs.value, now
            st.severity = rule.severity
            self._dirty_states.add(fp)
            if self._for_s(rule, now) > 0:
                self._event("pending", now, st, value=obs.value)
                return "pending"
        if st.state == PENDING:
            if not breached:
                st.state, st.active_since, st.last_value, st.last_eval_at = RESOLVED, None, obs.value, now
                self._dirty_states.add(fp)
                self._aftermath.pop(fp, None)
                self._event("cleared", now, st, value=obs.value, detail="cleared before it fired")
                return "cleared"
            if now - (st.active_since or now) < self._for_s(rule, now) or now < self._aftermath.get(fp, now):
                return None
            if self._root_pending(rule, now):
                return None    # its root cause is about to fire: wait, then fold under it
            if self._in_root_aftermath(st, rule, now):
                return None    # its root cause just resolved: a lagging window clears first
            self._aftermath.pop(fp, None)
            return await self._fire(st, rule, obs, now)
        # FIRING
        if breached:
            if st.clear_since is not None:
                st.clear_since = None
                self._dirty_states.add(fp)
            return None
        if st.clear_since is None:
            st.clear_since = now
            self._dirty_states.add(fp)
        if now - st.clear_since >= rule.keep_firing_for_s:
            self._resolve_series(st, now)
            return "resolved"
        return None

    async def _fire(self, st: AlertState, rule: Rule, obs: Observation, now: float) -> str | None:
        value = obs.value
        summary = render_summary(rule, obs.labels, obs.context, value, obs.threshold)
        if rule.cleanup_first:
            report = await self.reclaimers.reclaim(reason=f"{rule.name}: {fmt_unit(value, rule.unit)} before alerting")
            after = await self.measure(rule, obs.labels) if self.measure is not None else None
            shown = (f"{fmt_unit(value, rule.unit)} before cleanup, "
                     f"{fmt_unit(after, rule.unit)} after ({', '.join(report.ran)})")
            if after is not None and not rule.breached(after, obs.threshold):
                st.state, st.active_since, st.last_value = RESOLVED, None, after
                self._value[st.fingerprint] = after
                self._dirty_states.add(st.fingerprint)
                self._event("cleanup", now, st, value=after, detail=f"back under the threshold: {shown}")
                return "cleared"
            self._event("cleanup", now, st, value=after, detail=f"still over: {shown}")
            if after is not None:
                st.last_value = value = self._value[st.fingerprint] = after
                summary = render_summary(rule, obs.labels, obs.context, value, obs.threshold)
            summary += f" (memory {shown})"
        st.state, st.fired_at, st.clear_since, st.resolved_at = FIRING, now, None, None
        st.summary, st.last_value, st.last_eval_at = summary, value, now
        st.inhibited_by = None
        self._dirty_states.add(st.fingerprint)
        self._firing.setdefault(rule.name, set()).add(st.fingerprint)
        self._note_change(st, now)
        return "fired"

    def _resolve_series(self, st: AlertState, now: float) -> None:
        st.state, st.resolved_at, st.clear_since, st.active_since = RESOLVED, now, None, None
        st.last_value, st.last_eval_at = self._value.get(st.fingerprint, st.last_value), now
        self._dirty_states.add(st.fingerprint)
        self._firing.get(st.rule, set()).discard(st.fingerprint)
        self._note_change(st, now)
        self._event("resolved", now, st, value=st.last_value,
                    detail=f"lasted {fmt_duration(now - (st.fired_at or now))}")
        self._release(st, now)

    def _root_pending(self, rule: Rule, now: float) -> bool:
        """Whether a rule ``rule`` depends on is pending (breached, waiting for its ``for``): a
        consequence that fired first would open its own incident a moment before its root cause."""
        for dep in rule.depends_on:
            dep_rule = self.rules.get(dep)
            if dep_rule is None:
                continue
            for other in self.states.values():
                if (other.rule == dep and other.state == PENDING and other.active_since is not None
                        and now - other.active_since <= self._for_s(dep_rule, now) + HOLD_GRACE_S):
                    return True
        return False

    def _aftermath_s(self, rule: Rule) -> float:
        """How long a consequence waits after its root cause resolved before it may fire on its own:
        its ``for`` + ``keep_firing_for`` + ``window`` + ``lookback`` (by then neither the rule's
        window nor the metric's own past, such as a 5-minute error rate, still covers the outage)."""
        return rule.for_s + rule.keep_firing_for_s + rule.window_s + rule.lookback_s

    def _in_root_aftermath(self, st: AlertState, rule: Rule, now: float) -> bool:
        """A consequence about to fire while no root cause of it fires, but one resolved moments ago
        (the market answers again while the 5-minute error rate still reads high): it waits out its
        aftermath instead of joining or opening an incident as if unrelated; it fires on its own only
        if still breached after that (``_release`` does the same for consequences already firing)."""
        if not rule.depends_on or self._root_for(rule) is not None:
            return False
        resolved = [self._root_resolved_at[d] for d in rule.depends_on if d in self._root_resolved_at]
        if not resolved:
            return False
        until = max(resolved) + self._aftermath_s(rule)
        if now >= until:
            return False
        if self._aftermath.get(st.fingerprint) != until:
            self._aftermath[st.fingerprint] = until
            self._event("pending", now, st, value=self._value.get(st.fingerprint),
                        detail=f"its root cause resolved; fires on its own if still breached in "
                               f"{fmt_duration(until - now)}")
        return True

    def _release(self, root: AlertState, now: float) -> None:
        """The root cause ``root`` resolved: the consequences folded under it still firing move under
        another firing root cause, or go back to pending, to fire on their own (a new message) only if
        they are still breached after their ``for`` + ``keep_firing_for`` + ``window`` (a lagging
        window, such as the API error rate, clears by then). The incident then resolves with its root cause, not minutes later."""
        if root.rule in self._dependents:
            self._root_resolved_at[root.rule] = now
        iid = root.incident_id
        if iid is None or root.flapping:    # a flapping root keeps its incident (and consequences) open
            return
        for fp in list(self.members.get(iid, ())):
            other = self.states[fp]
            if other.inhibited_by != root.fingerprint or other.state != FIRING:
                continue
            rule = self.rules.get(other.rule)
            if rule is None:
                continue
            new_root = self._root_for(rule)
            if new_root is not None and new_root.incident_id is not None:
                self._place(other, new_root.incident_id, inhibited_by=new_root.fingerprint)
                self._released_into.add(new_root.incident_id)
                continue
            grace = self._aftermath_s(rule)
            self._event("pending", now, other, value=self._value.get(fp),
                        detail=f"{root.rule} resolved; fires on its own if still breached in {fmt_duration(grace)}")
            self.members[iid].discard(fp)
            self._firing.get(other.rule, set()).discard(fp)
            other.state, other.active_since, other.clear_since = PENDING, now, None
            other.incident_id, other.inhibited_by = None, None
            self._dirty_states.add(fp)
            self._aftermath[fp] = now + grace

    def _changes(self, st: AlertState) -> list[float]:
        try:
            raw = json.loads(st.changes_json or "[]")
            return [float(x) for x in raw if isinstance(x, (int, float))]
        except ValueError:
            return []

    def _last_change(self, st: AlertState) -> float | None:
        changes = self._changes(st)
        return changes[-1] if changes else None

    def _note_change(self, st: AlertState, now: float) -> None:
        window = self.settings.alert_flap_window_s
        changes = [t for t in self._changes(st) if now - t < window] + [now]
        st.changes_json = json.dumps(changes[-50:])
        if not st.flapping and len(changes) >= self.settings.alert_flap_changes and st.incident_id is not None:
            st.flapping = True
            self._event("flapping", now, st,
                        detail=f"{len(changes)} state changes in {fmt_duration(window)}; one state until it settles")
            inc = self.incidents.get(st.incident_id)
            if inc is not None:
                inc.flapping = True
                self._dirty_incidents.add(st.incident_id)

    # ------------------------------------------------------------------ incidents

    def _active_fp(self, st: AlertState, iid: int) -> bool:
        return st.incident_id == iid and (st.state == FIRING or st.flapping)

    def _active(self, iid: int) -> list[AlertState]:
        return [self.states[fp] for fp in self.members.get(iid, ()) if self._active_fp(self.states[fp], iid)]

    def _group_key(self, rule: Rule) -> str:
        return f"oob:{rule.group}" if rule.notify == "out_of_band" else rule.group

    async def _attach(self, st: AlertState, rule: Rule, now: float, changed: set[int], opened: set[int],
                      pings: dict[int, list[tuple[str, str]]], boosts: list[tuple[str, str]]) -> None:
        fp = st.fingerprint
        # a flapping series that fires again is still in its incident: nothing new to say
        if st.flapping and st.incident_id in self.incidents:
            self._event("fired", now, st, value=st.last_value, detail="flapping")
            changed.add(st.incident_id)
            return
        if len(self._firing.get(rule.name, ())) <= 1:   # the rule starts firing (not one more series of it)
            self._count_fire(rule.name, now, fp, boosts)
        root = self._root_for(rule)
        if root is not None:
            iid = root.incident_id
            assert iid is not None
            self._place(st, iid, inhibited_by=root.fingerprint)
            self._event("fired", now, st, value=st.last_value)
            self._event("folded", now, st, detail=f"consequence of {root.rule}")
            changed.add(iid)
        else:
            key = self._group_key(rule)
            inc = next((i for i in reversed(list(self.incidents.values())) if i.group_key == key), None)
            if inc is None:
                inc = await self._open(st, rule, now)
                assert inc.id is not None
                opened.add(inc.id)
            else:
                assert inc.id is not None
                new_rule = all(self.states[m].rule != rule.name for m in self.members.get(inc.id, ()))
                self._place(st, inc.id, inhibited_by=None)
                if new_rule and inc.id not in opened:
                    pings.setdefault(inc.id, []).append(("join", fp))
            iid = inc.id
            self._event("fired", now, st, value=st.last_value, detail=st.summary[:300])
            changed.add(iid)
        # this series may be the root cause of consequences firing elsewhere: fold them in
        dependents = self._dependents.get(rule.name, set())
        for other in [self.states[f] for r in dependents for f in self._firing.get(r, ())]:
            if other.state != FIRING or other.inhibited_by is not None or other.incident_id in (None, iid):
                continue
            orule = self.rules.get(other.rule)
            if orule is None or rule.name not in orule.depends_on:
                continue
            old = other.incident_id
            assert old is not None
            self._place(other, iid, inhibited_by=fp)
            self._merged[old] = iid
            self._event("folded", now, other, detail=f"consequence of {rule.name}")
            changed.update((iid, old))

    def _root_for(self, rule: Rule) -> AlertState | None:
        if not rule.depends_on:
            return None
        for iid in self.incidents:
            for mfp in self.members.get(iid, ()):
                m = self.states[mfp]
                if m.rule in rule.depends_on and self._active_fp(m, iid) and m.inhibited_by is None:
                    return m
        return None

    def _place(self, st: AlertState, iid: int, *, inhibited_by: str | None) -> None:
        if st.incident_id is not None and st.incident_id in self.members:
            self.members[st.incident_id].discard(st.fingerprint)
        st.incident_id = iid
        st.inhibited_by = inhibited_by
        self.members.setdefault(iid, set()).add(st.fingerprint)
        self._dirty_states.add(st.fingerprint)

    async def _open(self, st: AlertState, rule: Rule, now: float) -> AlertIncident:
        inc = AlertIncident(group_key=self._group_key(rule), title=st.summary[:500], severity=rule.severity,
                            status=OPEN, opened_at=now, chat_id=self.alert_chat_id)
        await self.store.insert_incident(inc)
        assert inc.id is not None
        inc.message_key = f"alert:{inc.id}:{int(now)}"
        self.incidents[inc.id] = inc
        self.members[inc.id] = set()
        self._dirty_incidents.add(inc.id)
        self._place(st, inc.id, inhibited_by=None)
        self._event("opened", now, st, detail=st.summary[:300])
        self._events[-1].incident_id = inc.id
        return inc

    def _count_fire(self, rule: str, now: float, fp: str, boosts: list[tuple[str, str]]) -> None:
        window = self.settings.alert_repeat_window_s
        fires = self._fires.setdefault(rule, deque())
        fires.append(now)
        while fires and now - fires[0] >= window:
            fires.popleft()
        last = self._boosted.get(rule)
        if len(fires) >= self.settings.alert_repeat_fires and (last is None or now - last >= window):
            self._boosted[rule] = now
            boosts.append((rule, fp))

    async def _boost(self, rule: str, fp: str, now: float) -> None:
        st = self.states.get(fp)
        inc = self.incidents.get(st.incident_id) if st is not None and st.incident_id is not None else None
        if inc is None or inc.status != OPEN or not inc.announced or inc.muted_reason:
            return
        inc.repeat_boost += 1
        n = len(self._fires.get(rule, ()))
        await self._escalate_step(inc, now, Actor.system(),
                                  f"{rule} fired {n} times in {fmt_duration(self.settings.alert_repeat_window_s)}")

    async def _reconcile(self, changed: set[int], now: float, opened: set[int],
                         pings: dict[int, list[tuple[str, str]]]) -> None:
        """Bring each touched incident up to date: severity, title, re-arm, announce, edit, close."""
        for iid in sorted(changed):
            inc = self.incidents.get(iid)
            if inc is None:
                continue
            active = self._active(iid)
            if not active:
                await self._close(inc, now, merged_into=self._merged.pop(iid, None))
                continue
            self._dirty_incidents.add(iid)
            old_severity = inc.severity
            inc.severity = max((s.severity for s in active), key=lambda s: SEVERITY_RANK.get(s, 0))
            inc.flapping = any(s.flapping for s in active)
            inc.title = self._title(active)
            rose = SEVERITY_RANK.get(inc.severity, 0) > SEVERITY_RANK.get(old_severity, 0)
            if not inc.announced:
                await self._announce(inc, active, now)
                continue
            if inc.status == ACKNOWLEDGED and rose and \
                    SEVERITY_RANK.get(inc.severity, 0) > SEVERITY_RANK.get(inc.acked_severity or "info", 0):
                acked_by = inc.acked_by_name or "?"
                self._clear_ack(inc)
                self._event("rearmed", now, incident=inc, detail=f"{old_severity} -> {inc.severity}; ack by {acked_by} re-armed")
                self._arm(inc, now)
                await self._send(inc, render.rearm_ping(self._view(inc, now), acked_by, old_severity),
                                 f"{inc.message_key}:rearm:{int(now)}")
            elif inc.status == OPEN and rose:
                self._arm(inc, now)
            for kind, fp in pings.get(iid, []):
                st = self.states[fp]
                rule = self.rules.get(st.rule)
                reason = await self.mutes.muted(rule, self._labels(st), now) if rule is not None else None
                if reason is not None:
                    self._event("muted", now, st, detail=f"join not sent: {reason}")
                    continue
                if kind == "join":
                    member = self._member_view(st)
                    await self._send(inc, render.join_ping(self._view(inc, now), member),
                                     f"{inc.message_key}:join:{fp}:{int(st.fired_at or now)}")
            await self._edit(inc, now, soon=not pings.get(iid))

    def _title(self, active: Sequence[AlertState]) -> str:
        roots = [s for s in active if s.inhibited_by is None] or list(active)
        roots.sort(key=lambda s: (-SEVERITY_RANK.get(s.severity, 0), s.fired_at or 0.0))
        rules = list(dict.fromkeys(s.rule for s in roots))
        title = roots[0].summary or roots[0].rule
        if len(rules) > 1:
            title += f" (+{len(rules) - 1} more: {', '.join(rules[1:4])})"
        return title[:500]

    async def _announce(self, inc: AlertIncident, active: Sequence[AlertState], now: float) -> None:
        rule = self.rules.get(active[0].rule)
        if rule is not None and rule.notify == "out_of_band":
            await self._out_of_band(inc, now, "opened")
            inc.muted_reason = "out of band: log, console, fallback webhook"
            return
        reasons = []
        for st in active:
            r = self.rules.get(st.rule)
            reason = await self.mutes.muted(r, self._labels(st), now) if r is not None else None
            if reason is None:
                break
            reasons.append(reason)
        else:
            if inc.muted_reason is None:
                inc.muted_reason = reasons[0] if reasons else "muted"
                self._event("muted", now, incident=inc, detail=f"opening not sent: {inc.muted_reason}")
            return
        if self.alert_chat_id is None:
            if inc.muted_reason is None:
                inc.muted_reason = "no alert chat (TELEGRAM_ALERT_CHAT_ID)"
                self._event("muted", now, incident=inc, detail=inc.muted_reason)
                log.warning("alert incident #%s not sent: TELEGRAM_ALERT_CHAT_ID is not set", inc.id)
            return
        inc.muted_reason = None
        view = self._view(inc, now)
        assert inc.message_key is not None and inc.id is not None
        await self.outbox.enqueue(self.alert_chat_id, render.incident_text(view, now), key=inc.message_key,
                                  priority=PRIORITY.get(inc.severity, INFO), reply_markup=self._markup(inc, view))
        inc.announced = True
        inc.chat_id = self.alert_chat_id
        self._dirty_incidents.add(inc.id)
        self._arm(inc, now)

    async def _out_of_band(self, inc: AlertIncident, now: float, what: str) -> None:
        view = self._view(inc, now)
        line = f"ALERT {what} (out of band, the chat cannot hear it): {render.plain_summary(view)}"
        log.error(line)
        print(line, file=sys.stderr, flush=True)
        detail = "log, console"
        url = self.settings.fallback_webhook_url
        if url:
            assert inc.id is not None
            self._posts.append((inc.id, url, {"source": "tokenwatch", "kind": "alert_out_of_band", "what": what,
                                              **self._payload(view, now)}))
            detail += ", fallback webhook"
        self._event("notified", now, incident=inc, detail=f"{what}: {detail}")

    async def _close(self, inc: AlertIncident, now: float, *, merged_into: int | None = None) -> None:
        assert inc.id is not None
        inc.status, inc.resolved_at = CLOSED, now
        inc.next_escalation_at = None
        inc.timer_token += 1
        self._dirty_incidents.add(inc.id)
        meanwhile = await self._meanwhile(inc)
        detail = f"lasted {fmt_duration(now - inc.opened_at)}" + (f"; {meanwhile}" if meanwhile else "")
        if merged_into is not None:
            detail += f"; merged into #{merged_into}"
            inc.title = f"{inc.title[:400]} → merged into #{merged_into}"
        self._event("closed", now, incident=inc, detail=detail)
        view = self._view(inc, now)
        if inc.announced and merged_into is not None:
            await self._edit(inc, now, view=view)       # not resolved: it lives on in the root cause's
        elif inc.announced:
            await self._edit(inc, now, view=view)
            await self._send(inc, render.resolved_ping(view, now, meanwhile), f"{inc.message_key}:resolved")
        elif inc.muted_reason and inc.muted_reason.startswith("out of band"):
            await self._out_of_band(inc, now, "resolved")
        self.incidents.pop(inc.id, None)
        self._silenced_until.pop(inc.id, None)
        self._last_edit.pop(inc.id, None)
        self._edit_due.discard(inc.id)
        self._closed[inc.id] = inc
        while len(self._closed) > CLOSED_CACHE:
            self._closed.pop(next(iter(self._closed)))

    async def _meanwhile(self, inc: AlertIncident) -> str:
        assert inc.id is not None
        events = [e for e in await self.store.events_for(inc.id, limit=500)]
        events += [e for e in self._events if e.incident_id == inc.id]
        kinds = Counter(e.kind for e in events)
        parts: list[str] = []
        acks = [e for e in events if e.kind == "ack"]
        if acks:
            parts.append("acknowledged by " + ", ".join(dict.fromkeys(e.actor or "?" for e in acks)))
        if kinds["escalated"]:
            parts.append(f"escalated {kinds['escalated']}×")
        if kinds["ack_lapsed"]:
            parts.append(f"acknowledgment lapsed {kinds['ack_lapsed']}×")
        if kinds["remediation"]:
            parts.append("actions: " + "; ".join(e.detail for e in events if e.kind == "remediation")[:200])
        if kinds["cleanup"]:
            parts.append(f"memory cleanup {kinds['cleanup']}×")
        if kinds["silenced"]:
            parts.append("silenced")
        if kinds["flapping"]:
            parts.append("flapped")
        if kinds["folded"]:
            parts.append(f"{kinds['folded']} consequence(s) folded in")
        fired = {e.fingerprint for e in events if e.kind == "fired"}
        if len(fired) > 1:
            parts.append(f"{len(fired)} series fired")
        actions = await self._actions_during(inc, automatic=True)
        if actions:
            shown = "; ".join(f"{a.change()} ({a.controller})" for a in actions[:MEANWHILE_ACTIONS])
            more = f"; +{len(actions) - MEANWHILE_ACTIONS} more" if len(actions) > MEANWHILE_ACTIONS else ""
            parts.append(f"automatic actions: {shown}{more}")
        return ", ".join(parts)

    async def _actions_during(self, inc: AlertIncident, *, automatic: bool) -> list[ActionView]:
        """The recovery layer's recorded actions while ``inc`` was open (``recovery.ledger_queries``)."""
        end = inc.resolved_at if inc.resolved_at is not None else self.clock.time()
        try:
            return await actions_between(self.db, inc.opened_at, end, automatic=automatic)
        except Exception:  # noqa: BLE001 - the incident's story without them beats none
            log.exception("could not read the action ledger for incident #%s", inc.id)
            return []

    # ------------------------------------------------------------------ escalation and acks

    def _push(self, due: float, inc: AlertIncident, kind: str) -> None:
        assert inc.id is not None
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, inc.id, inc.timer_token, kind))

    def _arm(self, inc: AlertIncident, now: float) -> None:
        """(Re)schedule the next escalation step from ``now``; bumps the timer token."""
        inc.timer_token += 1
        inc.next_escalation_at = None
        assert inc.id is not None
        self._dirty_incidents.add(inc.id)
        chain = self.chains.get(inc.severity, ())
        if inc.status != OPEN or not inc.announced or inc.muted_reason or inc.escalation_level >= len(chain):
            return
        inc.next_escalation_at = now + gap_before(chain, inc.escalation_level)
        self._push(inc.next_escalation_at, inc, "escalate")

    async def _escalate_step(self, inc: AlertIncident, now: float, actor: Actor, reason: str) -> str | None:
        """Run the next step of the incident's chain now; returns what was done, None when none is left."""
        chain = self.chains.get(inc.severity, ())
        level = inc.escalation_level
        if level >= len(chain):
            return None
        assert inc.id is not None and inc.message_key is not None
        rule = self.rules.get(self._active(inc.id)[0].rule) if self._active(inc.id) else None
        if rule is not None and actor.user_id is None:
            reason_muted = await self.mutes.muted(rule, self._labels(self._active(inc.id)[0]), now)
            if reason_muted is not None:
                inc.next_escalation_at = None
                inc.timer_token += 1
                self._dirty_incidents.add(inc.id)
                self._event("muted", now, incident=inc, detail=f"escalation held: {reason_muted}")
                return None
        step = chain[level]
        inc.escalation_level = level + 1
        view = self._view(inc, now)
        admins = list(self.settings.telegram_admin_ids)
        key = f"{inc.message_key}:esc{level}"
        prio = PRIORITY.get(inc.severity, INFO)
        ping = render.escalation_ping(view, now, admins, reason)
        if step.action == "chat" and self.alert_chat_id is not None:
            await self.outbox.enqueue(self.alert_chat_id, ping, key=key, priority=prio, reply_markup=self._markup(inc, view))
            done = f"alert chat, mentioning {len(admins)} admin(s)"
        elif step.action == "dm":
            for uid in admins:
                await self.outbox.enqueue(int(uid), ping, key=f"{key}:dm{uid}", priority=prio,
                                          reply_markup=self._markup(inc, view))
            done = f"direct message to {len(admins)} admin(s)" if admins else "no admins to message (TELEGRAM_ADMIN_IDS)"
        elif step.action == "escalation_chat":
            chat = self.settings.telegram_escalation_chat_id
            if chat is not None:
                text = f"⏫ Escalated ({render.esc(reason)})\n" + render.incident_text(view, now)
                await self.outbox.enqueue(int(chat), text, key=f"{key}:x", priority=prio,
                                          reply_markup=self._markup(inc, view))
                done = "posted to the escalation chat"
            else:
                done = "skipped: TELEGRAM_ESCALATION_CHAT_ID is not set"
        elif step.action == "webhook":
            url = self.settings.escalation_webhook_url
            if url:
                self._posts.append((inc.id, url, {"source": "tokenwatch", "kind": "alert_escalation",
                                                  "level": level + 1, "reason": reason, **self._payload(view, now)}))
                done = "webhook POST queued"
            else:
                done = "skipped: ESCALATION_WEBHOOK_URL is not set"
        else:
            done = "skipped: no alert chat"
        detail = f"step {level + 1}/{len(chain)} {step.action}: {done} ({reason})"
        self._event("escalated", now, incident=inc, actor=actor, detail=detail)
        if inc.status == OPEN and inc.escalation_level < len(chain) and not inc.muted_reason:
            inc.timer_token += 1
            inc.next_escalation_at = now + gap_before(chain, inc.escalation_level)
            self._push(inc.next_escalation_at, inc, "escalate")
        else:
            inc.timer_token += 1
            inc.next_escalation_at = None
        self._dirty_incidents.add(inc.id)
        await self._edit(inc, now)
        return detail

    def _clear_ack(self, inc: AlertIncident) -> None:
        inc.status = OPEN
        inc.acked_by = inc.acked_by_name = inc.acked_at = inc.ack_until = inc.acked_severity = None

    async def _lapse(self, inc: AlertIncident, now: float) -> None:
        acked_by = inc.acked_by_name or "?"
        until = inc.ack_until or now
        self._clear_ack(inc)
        self._event("ack_lapsed", now, incident=inc, detail=f"acknowledgment by {acked_by} lapsed")
        self._arm(inc, now)
        await self._send(inc, render.reminder_ping(self._view(inc, now), now, acked_by),
                         f"{inc.message_key}:remind:{int(until)}")
        await self._edit(inc, now)

    async def _post_webhooks(self) -> None:
        posts, self._posts = self._posts, []
        for iid, url, payload in posts:
            error = await self.poster.post(url, payload)
            detail = f"{payload.get('kind')}: POST ok" if error is None else f"{payload.get('kind')}: POST failed: {error}"
            if error is not None:
                log.warning("alert webhook for incident #%s failed: %s", iid, error)
            ev = AlertEvent(at=self.clock.time(), kind="webhook", incident_id=iid, actor="auto", detail=detail[:500])
            try:
                await self.store.write(events=[ev])
            except Exception:  # noqa: BLE001 - the record of a record; never fatal
                log.exception("could not record a webhook result")

    # ------------------------------------------------------------------ messages

    def _labels(self, st: AlertState) -> dict[str, str]:
        cached = self._labels_cache.get(st.fingerprint)
        if cached is not None:
            return cached
        try:
            raw = json.loads(st.labels_json or "{}")
            labels = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        except ValueError:
            labels = {}
        self._labels_cache[st.fingerprint] = labels
        return labels

    def _member_view(self, st: AlertState) -> MemberView:
        rule = self.rules.get(st.rule)
        root = self.states.get(st.inhibited_by) if st.inhibited_by else None
        return MemberView(rule=st.rule, labels=self._labels(st), severity=st.severity, state=st.state,
                          summary=st.summary, value=self._value.get(st.fingerprint, st.last_value),
                          since=st.fired_at if st.state == FIRING else st.active_since,
                          folded_under=root.rule if root is not None else None, flapping=st.flapping,
                          threshold=self._threshold.get(st.fingerprint, rule.threshold if rule else None),
                          unit=rule.unit if rule is not None else "")

    def _remediations(self, rules: Iterable[str]) -> list[Remediation]:
        out: list[Remediation] = []
        for name in dict.fromkeys(rules):
            rule = self.rules.get(name)
            if rule is not None:
                out.extend(r for r in rule.remediation if r not in out)
        return out

    def _view(self, inc: AlertIncident, now: float) -> IncidentView:
        assert inc.id is not None
        fps = self.members.get(inc.id)
        if fps is None:
            fps = {fp for fp, st in self.states.items() if st.incident_id == inc.id}
        states = sorted((self.states[fp] for fp in fps), key=lambda s: (s.fired_at or 0.0, s.rule, s.fingerprint))
        rules = [s.rule for s in states if s.inhibited_by is None] + [s.rule for s in states if s.inhibited_by]
        runbooks = [r.runbook for r in (self.rules.get(n) for n in dict.fromkeys(rules)) if r is not None and r.runbook]
        return IncidentView(
            id=inc.id, title=inc.title, group=inc.group_key, severity=inc.severity, status=inc.status,
            opened_at=inc.opened_at, resolved_at=inc.resolved_at, acked_by=inc.acked_by_name, acked_at=inc.acked_at,
            ack_until=inc.ack_until, escalation_level=inc.escalation_level, next_escalation_at=inc.next_escalation_at,
            flapping=inc.flapping, muted_reason=inc.muted_reason, members=[self._member_view(s) for s in states],
            remediations=self._remediations(rules), runbook=runbooks[0] if runbooks else "")

    def _markup(self, inc: AlertIncident, view: IncidentView) -> dict[str, Any] | None:
        assert inc.id is not None
        try:
            return self.buttons.incident(inc.id, remediations=list(view.remediations), resolved=inc.status == CLOSED)
        except Exception:  # noqa: BLE001 - a message without buttons beats no message
            log.exception("buttons for incident #%s failed", inc.id)
            return None

    async def _edit(self, inc: AlertIncident, now: float, *, view: IncidentView | None = None,
                    soon: bool = False) -> None:
        """Queue the incident message's new text. ``soon``: an evaluation-driven change, sent at most
        every :data:`EDIT_EVERY_S` per incident (the tick sends what waited); presses edit at once."""
        if not inc.announced or inc.message_key is None or inc.chat_id is None:
            return
        assert inc.id is not None
        if soon and now - self._last_edit.get(inc.id, float("-inf")) < EDIT_EVERY_S:
            self._edit_due.add(inc.id)
            return
        self._edit_due.discard(inc.id)
        self._last_edit[inc.id] = now
        view = view or self._view(inc, now)
        inc.revision += 1
        assert inc.id is not None
        self._dirty_incidents.add(inc.id)
        await self.outbox.enqueue_edit(inc.chat_id, target_key=inc.message_key, text=render.incident_text(view, now),
                                       reply_markup=self._markup(inc, view), key=f"{inc.message_key}:e{inc.revision}")

    async def _send(self, inc: AlertIncident, text: str, key: str) -> None:
        if not inc.announced or inc.chat_id is None:
            return
        await self.outbox.enqueue(inc.chat_id, text, key=key, priority=PRIORITY.get(inc.severity, INFO))

    def _payload(self, view: IncidentView, now: float) -> dict[str, Any]:
        return {"incident": view.id, "title": view.title, "severity": view.severity, "status": view.status,
                "group": view.group, "opened_at": view.opened_at, "at": now,
                "members": [{"rule": m.rule, "labels": dict(m.labels), "state": m.state, "summary": m.summary,
                             "value": m.value} for m in view.members[:50]]}

    # ------------------------------------------------------------------ persistence

    def _event(self, kind: str, now: float, st: AlertState | None = None, *, incident: AlertIncident | None = None,
               value: float | None = None, actor: Actor | None = None, detail: str = "") -> None:
        self._events.append(AlertEvent(
            at=now, kind=kind, incident_id=incident.id if incident is not None else (st.incident_id if st else None),
            rule=st.rule if st is not None else None, fingerprint=st.fingerprint if st is not None else None,
            value=value, actor_id=actor.user_id if actor is not None else None,
            actor=actor.name if actor is not None else "auto", detail=detail[:1000]))

    async def _flush(self) -> None:
        states = [self.states[fp] for fp in self._dirty_states if fp in self.states]
        incidents = [i for iid in self._dirty_incidents
                     if (i := self.incidents.get(iid) or self._closed.get(iid)) is not None]
        events, self._events = self._events, []
        self._dirty_states, self._dirty_incidents = set(), set()
        try:
            await self.store.write(states=states, incidents=incidents, events=events)
        except Exception:
            # keep them for the next flush: memory stays the truth, the database catches up
            self._dirty_states.update(s.fingerprint for s in states)
            self._dirty_incidents.update(i.id for i in incidents if i.id is not None)
            self._events = events + self._events
            raise

    # ------------------------------------------------------------------ IncidentService

    def open_counts(self) -> dict[str, int]:
        counts = Counter(inc.severity for inc in self.incidents.values())
        return {sev: counts.get(sev, 0) for sev in ("critical", "warning", "info")}

    async def open_incidents(self) -> list[IncidentView]:
        now = self.clock.time()
        incs = sorted(self.incidents.values(), key=lambda i: (-SEVERITY_RANK.get(i.severity, 0), i.opened_at))
        return [self._view(i, now) for i in incs]

    async def _find(self, incident_id: int) -> AlertIncident | None:
        inc = self.incidents.get(incident_id) or self._closed.get(incident_id)
        if inc is None:
            inc = await self.store.get_incident(incident_id)
        return inc

    async def get(self, incident_id: int) -> IncidentView | None:
        inc = await self._find(incident_id)
        return self._view(inc, self.clock.time()) if inc is not None else None

    async def timeline(self, incident_id: int, limit: int = 30) -> list[TimelineEntry]:
        """The incident's newest ``limit`` events and the recovery actions taken meanwhile, oldest first."""
        entries = [TimelineEntry(at=e.at, kind=e.kind, actor=e.actor, detail=e.detail, value=e.value)
                   for e in await self.store.events_for(incident_id, limit=limit)]
        inc = await self._find(incident_id)
        if inc is not None:
            entries += [TimelineEntry(at=a.at, kind="action", actor=None,
                                      detail=a.describe() + (f" — {a.outcome}" if a.outcome else ""))
                        for a in await self._actions_during(inc, automatic=False)]
        return sorted(entries, key=lambda e: e.at)[-limit:]

    async def _stale(self, incident_id: int, now: float) -> ActionResult | None:
        """The answer for an incident that is not open (unknown or resolved), else None."""
        if incident_id in self.incidents:
            return None
        inc = await self._find(incident_id)
        if inc is None:
            return ActionResult(False, False, f"No incident #{incident_id}; /alerts lists the open ones.")
        ago = fmt_duration(now - (inc.resolved_at or now))
        return ActionResult(True, False, f"Incident #{incident_id} already resolved {ago} ago; nothing to do.")

    async def acknowledge(self, incident_id: int, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            stale = await self._stale(incident_id, now)
            if stale is not None:
                return stale
            inc = self.incidents[incident_id]
            if inc.status == ACKNOWLEDGED:
                return ActionResult(True, False, f"Already acknowledged by {inc.acked_by_name} "
                                                 f"{fmt_duration(now - (inc.acked_at or now))} ago.")
            inc.status = ACKNOWLEDGED
            inc.acked_by, inc.acked_by_name, inc.acked_at = actor.user_id, actor.name[:128], now
            inc.ack_until = now + self.settings.alert_ack_timeout_s
            inc.acked_severity = inc.severity
            inc.next_escalation_at = None
            inc.timer_token += 1
            self._dirty_incidents.add(incident_id)
            self._push(inc.ack_until, inc, "ack_lapse")
            self._event("ack", now, incident=inc, actor=actor,
                        detail=f"escalation stopped; lapses in {fmt_duration(self.settings.alert_ack_timeout_s)}")
            await self._edit(inc, now)
            await self._flush()
        return ActionResult(True, True, f"Acknowledged #{incident_id}; escalation stopped "
                                        f"(reminder in {fmt_duration(self.settings.alert_ack_timeout_s)}).")

    async def escalate(self, incident_id: int, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            stale = await self._stale(incident_id, now)
            if stale is not None:
                return stale
            inc = self.incidents[incident_id]
            prev = self._presses.get((incident_id, "escalate"))
            if prev is not None and now - prev[1] < DOUBLE_TAP_S:
                return ActionResult(True, False, f"Already escalated by {prev[0]} {fmt_duration(now - prev[1])} ago.")
            if not inc.announced:
                return ActionResult(True, False, f"Incident #{incident_id} is muted ({inc.muted_reason}); not escalated.")
            done = await self._escalate_step(inc, now, actor, f"escalated by {actor.name}")
            if done is None:
                return ActionResult(True, False, f"Incident #{incident_id} is already at its last escalation step.")
            self._presses[(incident_id, "escalate")] = (actor.name, now)
            await self._flush()
        await self._post_webhooks()
        return ActionResult(True, True, f"Escalated #{incident_id}: {done}.")

    def _matchers(self, inc: AlertIncident) -> list[str]:
        assert inc.id is not None
        active = [s for s in self._active(inc.id) if s.inhibited_by is None] or self._active(inc.id)
        by_rule: dict[str, list[AlertState]] = {}
        for st in active:
            by_rule.setdefault(st.rule, []).append(st)
        out = []
        for rule, sts in by_rule.items():
            parts = [f"rule={rule}"]
            if len(sts) == 1:
                for k, v in sorted(self._labels(sts[0]).items()):
                    if v and all(c.isalnum() or c in "_.:-/" for c in v) and k.replace("_", "").isalnum():
                        parts.append(f"{k}={v}")
            out.append(" ".join(parts))
        return out

    async def silence_incident(self, incident_id: int, duration_s: float, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            stale = await self._stale(incident_id, now)
            if stale is not None:
                return stale
            inc = self.incidents[incident_id]
            until = self._silenced_until.get(incident_id)
            if until is not None and until > now:
                prev = self._presses.get((incident_id, "silence"))
                who = f" by {prev[0]} {fmt_duration(now - prev[1])} ago" if prev else ""
                return ActionResult(True, False, f"Already silenced{who}; ends in {fmt_duration(until - now)}.")
            if self.silencer is None:
                return ActionResult(False, False, "Silences are not available in this process.")
            matchers = self._matchers(inc)
            for m in matchers:
                res = await self.silencer(m, duration_s, f"incident #{incident_id}", actor)
                if not res.ok:
                    return res
            self._silenced_until[incident_id] = now + duration_s
            self._presses[(incident_id, "silence")] = (actor.name, now)
            inc.muted_reason = f"silenced for {fmt_duration(duration_s)} by {actor.name}"[:64]
            inc.timer_token += 1
            inc.next_escalation_at = None
            self._dirty_incidents.add(incident_id)
            self._event("silenced", now, incident=inc, actor=actor, value=now + duration_s,
                        detail=f"{fmt_duration(duration_s)}: {'; '.join(matchers)}")
            await self._edit(inc, now)
            await self._flush()
        return ActionResult(True, True, f"Silenced #{incident_id} for {fmt_duration(duration_s)}; "
                                        "its resolution will still be announced.")

    async def remediate(self, incident_id: int, index: int, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            stale = await self._stale(incident_id, now)
            if stale is not None:
                return stale
            inc = self.incidents[incident_id]
            rems = self._view(inc, now).remediations
            if not 0 <= index < len(rems):
                return ActionResult(False, False, f"Incident #{incident_id} has no action {index + 1}.")
            rem = rems[index]
            fn = self.remediations.get(rem.action)
            if fn is None:
                return ActionResult(False, False, f"{rem.label}: not available in this process.")
            prev = self._presses.get((incident_id, f"rem:{rem.action}"))
            if prev is not None and now - prev[1] < DOUBLE_TAP_S:
                return ActionResult(True, False, f"Already ran {rem.label} by {prev[0]} {fmt_duration(now - prev[1])} ago.")
            self._presses[(incident_id, f"rem:{rem.action}")] = (actor.name, now)
        try:
            outcome = await fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - told to the operator, recorded
            outcome, ok = f"failed: {type(exc).__name__}: {exc}", False
        async with self._lock:
            now = self.clock.time()
            inc2 = self.incidents.get(incident_id) or inc
            self._event("remediation", now, incident=inc2, actor=actor, detail=f"{rem.label}: {outcome}")
            if inc2.id in self.incidents:
                await self._edit(inc2, now)
            await self._flush()
        return ActionResult(ok, ok, f"{rem.label}: {outcome}"[:300])
