"""/start and /help texts, generated from the command registry.

    render_help(registry, Role.VIEWER)   # lists only what a viewer may use
"""
from __future__ import annotations

from bot.commands import CommandRegistry, Role
from delivery.html import bold, code, esc


def render_start(first_name: str | None, role: Role, registry: CommandRegistry) -> str:
    name = esc(first_name) if first_name else "there"
    lines = [
        f"👋 Hello {name}. This is {bold('tokenwatch')}: it runs the Solana token pipeline and watches over it.",
        f"Your role: {bold(role.label)}.",
    ]
    if role is Role.VIEWER:
        lines.append("You can look at everything; admins act (acknowledge, tune, maintenance, restart).")
    elif role is Role.ADMIN:
        lines.append("You can look and act.")
    lines.append(f"Send {code('/help')} for the {len(registry.for_role(role))} commands you can use.")
    return "\n".join(lines)


def render_help(registry: CommandRegistry, role: Role) -> str:
    specs = registry.for_role(role)
    lines = [bold("Commands"), ""]
    for spec in specs:
        marker = " 🔒" if spec.role is Role.ADMIN else ""
        lines.append(f"/{esc(spec.name)}{marker} — {esc(spec.description)}")
        lines.append(f"   e.g. {code(spec.example)}")
    hidden = len(registry) - len(specs)
    if hidden:
        lines += ["", f"<i>{hidden} more command(s) need the admin role.</i>"]
    elif any(s.role is Role.ADMIN for s in specs):
        lines += ["", "<i>🔒 admin only</i>"]
    return "\n".join(lines)
