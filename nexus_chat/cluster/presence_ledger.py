"""Who is connected where, cluster-wide (docs/scaling.md#presence).

Keys under ``<key>:nexus``: ``where:<user>`` is the set of processes with at least one
socket of the user, ``on:<uid>`` the set of users a process holds. A process *arrives* when
its first socket of a user connects and *leaves* when its last one closes; each is one Lua
script, so exactly one process sees a user's set go from empty to non-empty (it stores and
tells "online") and exactly one sees it become empty ("offline"). ``reap`` removes every
process whose heartbeat key has expired (cluster/bus.py) and returns the users it held who
are now on no process; being one script, one caller gets each of them.
"""
from __future__ import annotations

from .bus import ClusterBus

# KEYS: where:<user>, on:<uid>; ARGV: uid, user. 1 if the user was on no process before.
_ARRIVE = """
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""

# 1 if the user is now on no process. Also when this process was not in the set any more
# (Redis restarted before it registered again): the user would otherwise stay online.
_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""

# ARGV: prefix. Removes processes whose heartbeat is gone; returns the users left on none.
_REAP = """
local prefix = ARGV[1]
local gone = {}
for _, p in ipairs(redis.call('SMEMBERS', prefix .. ':procs')) do
  if redis.call('EXISTS', prefix .. ':proc:' .. p) == 0 then
    for _, u in ipairs(redis.call('SMEMBERS', prefix .. ':on:' .. p)) do
      local w = prefix .. ':where:' .. u
      if redis.call('SREM', w, p) == 1 and redis.call('SCARD', w) == 0 then
        table.insert(gone, u)
      end
    end
    redis.call('DEL', prefix .. ':on:' .. p)
    redis.call('SREM', prefix .. ':procs', p)
  end
end
return gone
"""

# ARGV: prefix, uid. Number of other processes whose heartbeat is alive.
_OTHERS = """
local alive = 0
for _, p in ipairs(redis.call('SMEMBERS', ARGV[1] .. ':procs')) do
  if p ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. ':proc:' .. p) == 1 then alive = alive + 1 end
end
return alive
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PresenceLedger:
    def __init__(self, bus: ClusterBus) -> None:
        self.bus = bus
        redis = bus.redis
        self._arrive = redis.register_script(_ARRIVE)
        self._leave = redis.register_script(_LEAVE)
        self._reap = redis.register_script(_REAP)
        self._others = redis.register_script(_OTHERS)

    def _keys(self, user_id: str) -> list[str]:
        return [self.bus.key("where", user_id), self.bus.key("on", self.bus.uid)]

    async def arrive(self, user_id: str) -> bool:
        """This process has a socket of the user; True if no process had one before."""
        return bool(await self._arrive(keys=self._keys(user_id), args=[self.bus.uid, user_id]))

    async def leave(self, user_id: str) -> bool:
        """This process has no socket of the user left; True if no process has one now."""
        return bool(await self._leave(keys=self._keys(user_id), args=[self.bus.uid, user_id]))

    async def is_online(self, user_id: str) -> bool:
        return bool(await self.bus.redis.scard(self.bus.key("where", user_id)))

    async def reap(self) -> list[str]:
        """Forgets dead processes; the users who were only on them."""
        return [_text(u) for u in await self._reap(args=[self.bus.prefix])]

    async def retire(self) -> list[str]:
        """Shutdown: this process stops counting at once (no wait for its TTL)."""
        await self.bus.redis.delete(self.bus.key("proc", self.bus.uid))
        return await self.reap()

    async def others_alive(self) -> int:
        return int(await self._others(args=[self.bus.prefix, self.bus.uid]))
