"""The alert engine: rules over monitoring's snapshots become incidents that operators see,
acknowledge and escalate in Telegram.

Data flows one way: ``monitoring/`` publishes one snapshot per cycle -> the evaluator applies
the rules (``rules.py``, ``evaluate.py``) -> the engine turns observations into alert states
and incidents (``engine.py``), muted by silences and maintenance and tuned by ``/tune``
(``policy.py`` is the seam) -> notifications go out through ``delivery/`` (the outbox, edits in
place). ``bot/`` routers call the service methods for commands and buttons. Nothing here
imports ``bot/``; buttons are built through a protocol the bot supplies.
"""
