"""A value a test knob reads and sets: the running control a real part would hold."""
from __future__ import annotations


class Box:
    def __init__(self, v: float) -> None:
        self.v = v

    def get(self) -> float:
        return self.v

    def set(self, v: float) -> None:
        self.v = v
