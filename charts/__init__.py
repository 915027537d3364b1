"""Pictures of the metric store: presets, queries, trend lines, rendering off the event loop.

Sits between ``monitoring`` (which it reads through ``MetricStore.query``) and ``bot`` (which
shows the pictures); it never imports ``bot``::

    data = await fetch_chart(store, get_preset("health"), "6h", now)      # charts.data
    if isinstance(data, NotEnoughData): ...                              # "3 points since 14:02"
    picture = await worker.render(chat_id, data)                          # charts.worker, in a process
    picture.png, picture.series                                           # PNG bytes, names drawn

A preset is a small declarative object (``charts.presets.Preset``) registered in one place
(``charts.presets.PRESETS``); later presets (circuit-breaker shading) plug in there. The
``alerts`` preset and the incident / maintenance shading read the alert engine's history
through ``alerts.history`` (``charts.alert_timeline``); ``alerts`` never imports ``charts``.
"""
