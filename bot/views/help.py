"""/start and /help texts, generated from the command registry.

    render_help(registry, Role.VIEWER)   # lists only what a viewer may use
    render_help(registry, Role.ADMIN, {"token": "/token 7GCi…pump"})   # an example from the data
"""
from __future__ import annotations

from collections.abc import Mapping

from bot.commands import CommandRegistry, Role
from delivery.html import bold, code, esc


def render_start(first_name: str | None, role: Role, registry: CommandRegistry, *,
                 user_id: int | None = None, chat_id: int | None = None, chat_type: str | None = None) -> str:
    name = esc(first_name) if first_name else "there"
    lines = [
        f"👋 Hello {name}. This is {bold('tokenwatch')}: it runs the Solana token pipeline and watches over it.",
        f"Your role: {bold(role.label)}.",
    ]
    if user_id is not None:
        ids = f"Your user id: {code(str(user_id))}"
        if chat_id is not None and chat_type not in (None, "private"):
            ids += f"; this chat's id: {code(str(chat_id))} (for TELEGRAM_ALERT_CHAT_ID)"
        lines.append(ids + ".")
    if role is Role.VIEWER:
        lines.append("You can look at everything; admins act (acknowledge, tune, maintenance, restart).")
    elif role is Role.ADMIN:
        lines.append("You can look and act.")
    lines.append(f"Send {code('/help')} for the {len(registry.for_role(role))} commands you can use.")
    return "\n".join(lines)


def render_help(registry: CommandRegistry, role: Role, examples: Mapping[str, str] | None = None) -> str:
    """``examples`` replaces a command's registered example (``{"token": "/token <a tracked mint>"}``)."""
    specs = registry.for_role(role)
    lines = [bold("Commands"), ""]
    for spec in specs:
        marker = " 🔒" if spec.role is Role.ADMIN else ""
        lines.append(f"/{esc(spec.name)}{marker} — {esc(spec.description)}")
        lines.append(f"   e.g. {code((examples or {}).get(spec.name, spec.example))}")
    hidden = len(registry) - len(specs)
    if hidden:
        lines += ["", f"<i>{hidden} more command(s) need the admin role.</i>"]
    elif any(s.role is Role.ADMIN for s in specs):
        lines += ["", "<i>🔒 admin only</i>"]
    return "\n".join(lines)
