"""One router per command family. Each module exposes ``COMMANDS`` (its registry
entries) and ``make_router() -> Router``; ``bot.app`` includes them in order, with
``fallback`` (unknown commands, unknown buttons) last."""
