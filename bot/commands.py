"""The command registry: every bot command declared once, with its role.

Each router module in ``bot/routers/`` declares the commands it implements as a
``COMMANDS`` list of ``CommandSpec``; ``bot.app`` collects them into a
``CommandRegistry``. ``/help`` and ``setMyCommands`` are generated from it, so a
command that has no handler is never listed::

    registry = CommandRegistry()
    registry.add(CommandSpec("status", "Pipeline counts and backlog", "/status"))
    registry.for_role(Role.VIEWER)       # -> [CommandSpec(name="status", ...)]
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from aiogram.types import BotCommand

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class Role(IntEnum):
    """Who may do what; higher values include the rights of lower ones."""

    STRANGER = 0
    VIEWER = 1
    ADMIN = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: "Role | str | None") -> "Role":
        """``"admin"`` / ``Role.ADMIN`` / ``None`` (-> viewer) to a ``Role``."""
        if value is None:
            return cls.VIEWER
        if isinstance(value, Role):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}; use viewer or admin") from None


@dataclass(frozen=True)
class CommandSpec:
    """One command: its name (without ``/``), a one-line description, an example, its role.

        CommandSpec("jobs", "Scheduled jobs and their health", "/jobs", role=Role.VIEWER)
    """

    name: str
    description: str
    example: str
    role: Role = Role.VIEWER

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"command name {self.name!r} must be 1-32 chars of a-z, 0-9, _")
        if not 1 <= len(self.description) <= 256:
            raise ValueError(f"command /{self.name}: description must be 1-256 characters")
        object.__setattr__(self, "role", Role.parse(self.role))


class CommandRegistry:
    """The ordered set of implemented commands.

        registry = CommandRegistry([CommandSpec("ping", "Run the health checklist", "/ping")])
        registry.get("ping").role       # Role.VIEWER
    """

    def __init__(self, specs: Iterable[CommandSpec] = ()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: CommandSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"command /{spec.name} is declared twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name.lower())

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def all(self) -> list[CommandSpec]:
        return list(self._specs.values())

    def for_role(self, role: Role) -> list[CommandSpec]:
        """The commands ``role`` may use, in declaration order."""
        return [spec for spec in self._specs.values() if spec.role <= role]

    def bot_commands(self, role: Role) -> list[BotCommand]:
        """The ``setMyCommands`` list for ``role``."""
        return [BotCommand(command=spec.name, description=spec.description) for spec in self.for_role(role)]
