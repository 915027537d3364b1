"""Pure render functions: data in, Telegram HTML (and keyboards) out; every dynamic value escaped."""
