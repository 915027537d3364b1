"""The Telegram front: routers, middlewares, rendering and the delivery outbox."""
