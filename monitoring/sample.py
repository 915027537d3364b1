"""One measurement and its labels: the unit that collectors produce and the store keeps.

    Sample("tokenwatch_api_error_rate", 0.02, {"endpoint": "tokens"})
    canonical_labels({"b": "2", "a": "1"})   # "a=1,b=2"
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_NAME_LEN = 96
MAX_LABELS_LEN = 256


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement. ``ts`` None means "at collection time" (the registry fills it in).

        Sample("tokenwatch_api_error_rate", 0.02, {"endpoint": "tokens"})
    """

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    ts: float | None = None

    @property
    def labels_key(self) -> str:
        """The canonical label string used as a key and stored in the database."""
        return canonical_labels(self.labels)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def canonical_labels(labels: Mapping[str, str] | None) -> str:
    """``{"b": "2", "a": "1"}`` -> ``"a=1,b=2"``; sorted by key, ``\\``, ``,`` and ``=`` escaped.

    The empty mapping (or None) is ``""``. This is the form stored in ``metric_samples.labels``
    and used as the label part of :meth:`CollectorRegistry.latest` keys.
    """
    if not labels:
        return ""
    return ",".join(f"{_escape(str(k))}={_escape(str(v))}" for k, v in sorted(labels.items()))


def parse_labels(text: str) -> dict[str, str]:
    """Inverse of :func:`canonical_labels`."""
    out: dict[str, str] = {}
    if not text:
        return out
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(ch + text[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    for part in parts:
        key_chars: list[str] = []
        j = 0
        while j < len(part):
            if part[j] == "\\" and j + 1 < len(part):
                key_chars.append(part[j + 1])
                j += 2
                continue
            if part[j] == "=":
                break
            key_chars.append(part[j])
            j += 1
        raw_value = part[j + 1:]
        value_chars: list[str] = []
        k = 0
        while k < len(raw_value):
            if raw_value[k] == "\\" and k + 1 < len(raw_value):
                value_chars.append(raw_value[k + 1])
                k += 2
                continue
            value_chars.append(raw_value[k])
            k += 1
        out["".join(key_chars)] = "".join(value_chars)
    return out


def sample_problem(sample: object) -> str | None:
    """Why ``sample`` cannot be stored (bad type, name, labels or non-finite value), else None."""
    if not isinstance(sample, Sample):
        return f"not a Sample: {type(sample).__name__}"
    if not isinstance(sample.name, str) or not sample.name or len(sample.name) > MAX_NAME_LEN:
        return "bad name"
    if isinstance(sample.value, bool) or not isinstance(sample.value, (int, float)):
        return f"non-numeric value for {sample.name}"
    if not math.isfinite(sample.value):
        return f"non-finite value for {sample.name}"
    if sample.ts is not None and (not isinstance(sample.ts, (int, float)) or not math.isfinite(sample.ts)):
        return f"bad timestamp for {sample.name}"
    if not isinstance(sample.labels, Mapping):
        return f"labels not a mapping for {sample.name}"
    if len(canonical_labels(sample.labels)) > MAX_LABELS_LEN:
        return f"labels too long for {sample.name}"
    return None
