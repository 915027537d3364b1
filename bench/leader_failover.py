"""Leader failover: how long until a standby leads, and answers, after the leader dies or hangs.

    python bench/leader_failover.py                   # Redis lease, LEADER_LEASE_S=10, 3 rounds each
    python bench/leader_failover.py --lock postgres   # no Redis: the PostgreSQL advisory lock
    python bench/leader_failover.py --rounds 1 --lease 10 --renew 3

Two real ``tokenwatch run`` processes (``simulator.cluster``) on a scratch PostgreSQL database,
a redis-server of the bench's own (``--lock redis``) and the fake Bot API server. Each round
SIGKILLs (or SIGSTOPs, then SIGCONTs) the leader, sends three commands at once, and measures
from the fault to (1) the standby leading (its row in table ``processes``, precise to the 1 s
heartbeat) and (2) the last of the three replies. It checks every command got exactly one
reply. A killed process is started again as the new standby before the next round.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_pg import scratch_postgres  # noqa: E402
from simulator.cluster import Cluster, Member, RedisServer  # noqa: E402
from simulator.telegram_api import FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-failover"
ADMIN = 111
WAIT_S = 120.0


async def one_round(cluster: Cluster, fake: FakeTelegram, fault: str, asked: list[int]) -> tuple[float, float]:
    leader = await cluster.wait_for_leader(WAIT_S, fresh_s=2.5)
    start = time.monotonic()
    leader.kill() if fault == "kill" else leader.freeze()
    for _ in range(3):
        fake.user_sends(ADMIN, ADMIN, "/start")
        asked[0] += 1
    await cluster.wait_for_leader(WAIT_S, not_pid=leader.pid, fresh_s=2.5)
    elected = time.monotonic() - start

    async def answered() -> bool:
        return len(fake.sent(ADMIN)) >= asked[0]

    await cluster.wait_for(answered, WAIT_S, "every command answered")
    replied = time.monotonic() - start
    if fault == "stop":
        leader.thaw()
    else:
        await leader.proc.wait()
        cluster.members.remove(leader)
        await cluster.start(f"{leader.name}+")

    async def two_up() -> bool:
        return sorted((await cluster.roles(2.5)).values()) == ["leader", "standby"]

    await cluster.wait_for(two_up, WAIT_S, "a leader and a standby again")
    await asyncio.sleep(2.0)
    got = len(fake.sent(ADMIN))
    if got != asked[0]:
        raise AssertionError(f"{got} replies to {asked[0]} commands")
    return elected, replied


async def main(args: argparse.Namespace) -> None:
    fake = FakeTelegram(enforce_limits=False)
    await fake.start()
    fake.add_bot(TOKEN, "tokenwatch_bench_bot")
    fake.add_chat(ADMIN, "private")
    redis = RedisServer() if args.lock == "redis" else None
    if redis is not None:
        redis.start()
    try:
        async with scratch_postgres("tw_failover") as url:
            if url is None:
                return
            env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": fake.base_url, "TELEGRAM_ADMIN_IDS": str(ADMIN),
                   "COMMAND_RATE_LIMIT_PER_MIN": "1000", "LEADER_LEASE_S": str(args.lease),
                   "LEADER_RENEW_S": str(args.renew), "PROCESS_HEARTBEAT_S": "1", "LOG_LEVEL": "WARNING"}
            if redis is not None:
                env["REDIS_URL"] = redis.url
            with tempfile.TemporaryDirectory() as tmp:
                cluster = Cluster(database_url=url, workdir=Path(tmp), env=env)
                try:
                    await cluster.start("a")
                    await cluster.wait_for_leader(WAIT_S)       # migrated, leading: then the standby
                    await cluster.start("b")

                    async def two_up() -> bool:
                        return sorted((await cluster.roles(2.5)).values()) == ["leader", "standby"]

                    await cluster.wait_for(two_up, WAIT_S, "a leader and a standby")
                    asked = [0]
                    print(f"lock {args.lock}, LEADER_LEASE_S={args.lease:g}, LEADER_RENEW_S={args.renew:g}; "
                          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
                    for fault in ("kill", "stop"):
                        for i in range(args.rounds):
                            elected, replied = await one_round(cluster, fake, fault, asked)
                            print(f"  {'SIGKILL' if fault == 'kill' else 'SIGSTOP'} round {i + 1}: standby leads after "
                                  f"{elected:.1f}s, the 3 commands sent at the fault answered after {replied:.1f}s")
                    print(f"{asked[0]} commands, {len(fake.sent(ADMIN))} replies (each exactly once); "
                          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
                finally:
                    await cluster.close()
    finally:
        if redis is not None:
            redis.stop()
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", choices=("redis", "postgres"), default="redis")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", type=float, default=10.0, help="LEADER_LEASE_S")
    parser.add_argument("--renew", type=float, default=3.0, help="LEADER_RENEW_S")
    asyncio.run(main(parser.parse_args()))
