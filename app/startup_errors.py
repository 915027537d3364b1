"""Start-up failures as one line naming the setting and a fix, instead of a traceback.

``tokenwatch run`` and ``tokenwatch migrate`` check what they can before anything starts
(the ports they will bind, the database: reach it and migrate it) and turn a failure into
one line for the operator::

    try:
        upgrade_sync(settings.database_url)
    except Exception as exc:
        raise StartupError(explain_database_error(exc, settings.database_url)) from exc

    check_ports(settings)      # raises StartupError("HTTP_PORT 8080 is in use; set HTTP_PORT=...")

``explain(exc, settings)`` is the catch-all used around the running service: it names the
setting when the exception says which part failed, and otherwise gives the exception's
type and message on one line (the traceback goes to the log at DEBUG).
"""
from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterator

from app.settings import Settings


class StartupError(Exception):
    """A start-up failure already phrased as one line for the operator."""


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (``__cause__``, ``__context__``, SQLAlchemy's ``orig``), once each."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                stack.append(inner)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the database ------------------------------------------------------------------------------
def _pg_parts(url: str) -> tuple[str, int, str, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.host or "localhost", parsed.port or 5432, parsed.database or "", parsed.username or ""


def explain_database_error(exc: BaseException, url: str) -> str:
    """One line for a failure to reach, open or migrate the database at ``url`` (never shows the password)."""
    chain = list(causes(exc))
    migration = _explain_migration_error(chain)
    if migration:
        return migration
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1] or ":memory:"
        return (f"DATABASE_URL: cannot open the SQLite database {path} ({_short(chain[-1], 120)}); "
                "check that its directory exists and is writable")
    host, port, database, user = _pg_parts(url)
    where = f"PostgreSQL at {host}:{port}"
    names = {type(e).__name__ for e in chain}
    if "InvalidCatalogNameError" in names or any("does not exist" in str(e) and "database" in str(e) for e in chain):
        return (f"DATABASE_URL: database {database!r} does not exist on {where}; create it "
                f"(createdb -h {host} -p {port}{f' -U {user}' if user else ''} {database}) or fix the name")
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}:
        return (f"DATABASE_URL: {where} refused user {user!r} ({_short(_first(chain, names), 100)}); "
                "check the user name and password")
    for e in chain:
        if isinstance(e, socket.gaierror):
            return (f"DATABASE_URL: cannot resolve the host {host!r} of PostgreSQL ({e.strerror or e}); "
                    "check the host name")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return (f"DATABASE_URL: cannot reach {where} (connection refused); is it running? "
                    "check the host and port, then run `tokenwatch doctor`")
    for e in chain:
        if isinstance(e, TimeoutError):
            return (f"DATABASE_URL: cannot reach {where} (timed out); is it running and reachable "
                    "from here (firewall)?")
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None:
            return f"DATABASE_URL: cannot reach {where} ({e.strerror or e}); check the host and port"
    return f"DATABASE_URL: {where}: {type(chain[-1]).__name__}: {_short(chain[-1])}"


def _first(chain: list[BaseException], names: set[str]) -> BaseException:
    for e in chain:
        if type(e).__name__ in names and type(e).__module__.startswith("asyncpg"):
            return e
    return chain[-1]


def _explain_migration_error(chain: list[BaseException]) -> str | None:
    for e in chain:
        if type(e).__module__.startswith("alembic"):
            text = str(e)
            match = re.search(r"Can't locate revision identified by '([^']*)'", text)
            if match:
                from app.migrate import known_revisions

                return (f"unknown migration revision {match.group(1)!r}: use head, base or one of "
                        f"{', '.join(known_revisions())} (if the database was migrated by a newer "
                        "tokenwatch, run that version)")
            return f"migration failed: {_short(e)}"
    return None


# -- ports -------------------------------------------------------------------------------------
def ports_to_bind(settings: Settings) -> list[tuple[str, str, int]]:
    """``(setting, host, port)`` for every fixed port ``tokenwatch run`` will listen on."""
    wanted = [("HTTP_PORT", settings.http_host, settings.http_port)]
    if settings.telegram_bot_token and settings.telegram_webhook_url:
        wanted.append(("TELEGRAM_WEBHOOK_PORT", settings.http_host, settings.telegram_webhook_port))
    if settings.market == "sim":
        wanted.append(("SIM_PORT", settings.sim_host, settings.sim_port))
    return [(name, host, port) for name, host, port in wanted if port]


def port_error(name: str, host: str, port: int, exc: OSError) -> str:
    """One line for a failure to listen on ``host:port`` set by ``name``."""
    host_setting = "SIM_HOST" if name == "SIM_PORT" else "HTTP_HOST"
    if exc.errno == errno.EADDRINUSE:
        return (f"{name} {port} is in use on {host} (another tokenwatch, or another program); "
                f"stop it or set {name}= to a free port (0 = any free port)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{name} {port}: permission denied (ports under 1024 need root); set {name}= to a port >= 1024"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (f"{host_setting} {host!r} is not an address of this machine ({exc.strerror or exc}); "
                f"set {host_setting}=127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    return f"{name} {port} on {host}: cannot listen ({exc.strerror or exc})"


def check_ports(settings: Settings) -> None:
    """Raise ``StartupError`` if a port ``tokenwatch run`` needs cannot be bound right now.

    Binds and closes at once, with ``SO_REUSEADDR`` as asyncio's servers use it, so a port
    in TIME_WAIT is not reported as busy.
    """
    for name, host, port in ports_to_bind(settings):
        try:
            infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise StartupError(port_error(name, host, port, exc)) from exc
        for family, kind, proto, _name, address in infos[:1]:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
            except OSError as exc:
                raise StartupError(port_error(name, host, port, exc)) from exc
            finally:
                sock.close()


_BIND_MESSAGE = re.compile(r"bind on address \('([^']*)', (\d+)")


# -- the catch-all -----------------------------------------------------------------------------
def explain(exc: BaseException, settings: Settings) -> str:
    """One line for any exception that ended the start or the run (see the module doc)."""
    chain = list(causes(exc))
    for e in chain:
        if isinstance(e, StartupError):
            return str(e)
    for e in chain:
        module = type(e).__module__
        if module.startswith(("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic")):
            return explain_database_error(exc, settings.database_url)
    for e in chain:
        if type(e).__module__.startswith("redis"):
            return f"REDIS_URL: Redis failed ({_short(e, 150)}); is it running? check REDIS_URL, or leave it empty"
    for e in chain:
        if type(e).__name__ == "TelegramUnauthorizedError":
            return "TELEGRAM_BOT_TOKEN: the Bot API refused the token (401); copy it again from @BotFather"
    for e in chain:
        if isinstance(e, OSError):
            match = _BIND_MESSAGE.search(str(e))
            if match:
                host, port = match.group(1), int(match.group(2))
                name = next((n for n, h, p in ports_to_bind(settings) if p == port), "HTTP_PORT")
                return port_error(name, host, port, e)
    return (f"{type(exc).__name__}: {_short(exc)} (set LOG_LEVEL=DEBUG to see the traceback; "
            "`tokenwatch doctor` checks every setting)")
