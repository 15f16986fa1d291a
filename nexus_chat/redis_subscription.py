"""One Redis pub/sub subscription kept alive: the loop the Redis room adapter
(realtime/redis_adapter.py) and the cluster bus (cluster/bus.py) both run.

``keep_subscribed`` connects, subscribes to the channels and patterns, then hands every
message (subscribe confirmations included) to ``on_message``, synchronously and in the order
Redis sent them; when it returns an awaitable, the next message is read once that is done. When the connection fails it tells ``on_lost`` and connects again after
``RETRY_S`` (growing), for as long as its task runs; ``on_subscribed`` is awaited after each
subscription, with True when it follows a lost one (messages may have been missed) and the
subscription's client (for commands whose answers must come after the subscription; a
failure there counts as a lost connection). It stops only when its task is cancelled.
It imports nothing of the project, so that the protocol layer may use it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# Delays before connecting again, the last one repeated: quick after a blip, then every 2 s
# (a restarting Redis answers within a few seconds; no storm of connections while it is down).
RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)
# A quiet subscription is pinged every 10 s, so that a dead connection is noticed.
HEALTH_CHECK_S = 10
# How long one read waits for a message before it looks again (and lets the health check run).
READ_TIMEOUT_S = 5.0


async def keep_subscribed(url: str, *, channels: Iterable[str] = (), patterns: Iterable[str] = (),
                          on_message: Callable[[dict], Awaitable[None] | None],
                          on_subscribed: Callable[[bool, aioredis.Redis], Awaitable[None]],
                          on_lost: Callable[[Exception], None]) -> None:
    channels, patterns = tuple(channels), tuple(patterns)
    attempt = 0
    lost = False
    while True:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=HEALTH_CHECK_S)
        pubsub = client.pubsub()
        try:
            if patterns:
                await pubsub.psubscribe(*patterns)
            if channels:
                await pubsub.subscribe(*channels)
            attempt = 0
            again, lost = lost, False
            await on_subscribed(again, client)
            while True:
                message = await pubsub.get_message(timeout=READ_TIMEOUT_S)
                if message is not None:
                    pending = on_message(message)
                    if pending is not None:    # later messages wait for it (order is kept)
                        await pending
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            lost = True
            on_lost(exc)
        finally:
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:
                pass
        await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
        attempt += 1
