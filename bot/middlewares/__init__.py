"""aiogram middlewares: context injection, access control, per-user throttling."""
