"""Recoverable sessions of connected sockets, kept in Redis so that a client whose process
died can recover on another one (docs/scaling.md#connection-state-recovery).

A process keeps the sessions of its connected `/chat` sockets in the hash
``<key>:nexus:recovery:<uid>`` (pid hash -> {sid, user, base}, base: where the session
started, a position of nexus_chat/offsets.py); a socket that closes normally
leaves it (its process stores the session in the database as with one process). The hash
expires ``redis.process_ttl_s`` + ``realtime.recovery_window_s`` after the last heartbeat of
its process, so the sessions of a killed process stay claimable for the recovery window.
``take`` looks through the hashes of every process not yet expired
(``<key>:nexus:recovery-procs``, a sorted set of expiry times) and removes what it returns.
"""
from __future__ import annotations

import orjson

from .bus import ClusterBus

# KEYS: recovery-procs; ARGV: prefix, pid hash, user. Returns the session JSON or nil.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, p in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local hash = ARGV[1] .. ':recovery:' .. p
  local value = redis.call('HGET', hash, ARGV[2])
  if value then
    if cjson.decode(value)['user'] ~= ARGV[3] then return nil end
    redis.call('HDEL', hash, ARGV[2])
    return value
  end
end
return nil
"""

# KEYS: the hash, recovery-procs; ARGV: ms to keep, uid[, pid hash, session].
_RENEW = """
if ARGV[3] then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""


class SharedRecoverySessions:
    def __init__(self, bus: ClusterBus, window_s: int) -> None:
        self.bus = bus
        self.keep_ms = bus.process_ttl_ms + window_s * 1000
        self.hash = bus.key("recovery", bus.uid)
        self._take = bus.redis.register_script(_TAKE)
        self._renew = bus.redis.register_script(_RENEW)

    async def hold(self, pid_hash: str, sid: str, user_id: str, base: str) -> None:
        """The socket is connected here: its session can be claimed elsewhere if we die."""
        session = orjson.dumps({"sid": sid, "user": user_id, "base": base})
        await self._renew(keys=[self.hash, self.bus.key("recovery-procs")],
                          args=[self.keep_ms, self.bus.uid, pid_hash, session])

    async def drop(self, pid_hash: str) -> None:
        await self.bus.redis.hdel(self.hash, pid_hash)

    async def take(self, pid_hash: str, user_id: str) -> dict | None:
        """The user's session of this pid on any process, removed; None if there is none
        (or it is another user's, which stays). ``base_position`` is None for a session held
        by the previous version (its base a number)."""
        value = await self._take(keys=[self.bus.key("recovery-procs")],
                                 args=[self.bus.prefix, pid_hash, user_id])
        if value is None:
            return None
        session = orjson.loads(value)
        base = session.get("base")
        return {"sid": str(session["sid"]), "base_position": base if isinstance(base, str) else None}

    async def tick(self) -> None:
        """On each heartbeat: this process's sessions live on for the window after it stops."""
        await self._renew(keys=[self.hash, self.bus.key("recovery-procs")], args=[self.keep_ms, self.bus.uid])
