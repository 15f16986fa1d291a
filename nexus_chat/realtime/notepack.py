"""MessagePack as `notepack.io` writes it: the codec of Node's `@socket.io/redis-adapter` and
`@socket.io/redis-emitter`. Pure functions, no I/O.

notepack 3 (the version @socket.io/redis-adapter 8 and redis-emitter 5 use) is plain MessagePack
(strings as str, Buffers as bin, non-integers as float64) with JS's two extra values:

* ``Date``: written as the MessagePack timestamp extension (type -1; 32, 64 or 96 bit), and read
  also in notepack 2's form, fixext 8 of type 0 holding the milliseconds as a signed 64-bit
  integer. Read here as `JSDate`; written from a `JSDate` or a ``datetime``.
* ``undefined``: written as nil (and left out of objects); read also in notepack 2's form,
  fixext 1 of type 0 (``d4 00 00``), as `UNDEFINED`.

`for_json` turns a decoded value into what JSON.stringify would have made of it in Node (a Date
becomes its ISO string, ``undefined`` drops out of objects and is ``null`` in arrays), which is
what the clients of a Node server would receive.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgpack

_EXT = 0


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class JSDate:
    """A JS Date: milliseconds since the epoch (UTC)."""

    ms: int

    def iso(self) -> str:
        """As Date.prototype.toISOString: ``2026-11-30T12:00:00.000Z``."""
        moment = datetime.fromtimestamp(self.ms / 1000, tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    @classmethod
    def of(cls, moment: datetime) -> JSDate:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return cls(round(moment.timestamp() * 1000))


def _default(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, datetime):
        value = JSDate.of(value)
    if isinstance(value, JSDate):
        return msgpack.Timestamp.from_unix_nano(int(value.ms) * 1_000_000)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT and len(data) == 1:
        return UNDEFINED
    if code == _EXT and len(data) == 8:
        return JSDate(struct.unpack(">q", data)[0])
    if code == _EXT:
        return data        # notepack 2's ArrayBuffer
    return msgpack.ExtType(code, data)


def encode(value: Any) -> bytes:
    return msgpack.packb(_defined(value), use_bin_type=True, default=_default)


def _defined(value: Any) -> Any:
    """Objects leave out their undefined members, as notepack does."""
    if isinstance(value, dict):
        return {k: _defined(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [_defined(v) for v in value]
    return value


def decode(data: bytes) -> Any:
    """Raises ValueError (msgpack's errors are ValueError subclasses) on malformed input."""
    try:
        return _dates(msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False))
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ValueError(str(exc)) from None


def _dates(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        return JSDate(value.to_unix_nano() // 1_000_000)
    if isinstance(value, dict):
        return {k: _dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    return value


def for_json(value: Any) -> Any:
    """What JSON.stringify makes of the decoded value (before the Socket.IO encoder sees it)."""
    if isinstance(value, JSDate):
        return value.iso()
    if value is UNDEFINED:
        return None
    if isinstance(value, dict):
        return {str(k): for_json(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [for_json(v) for v in value]
    if isinstance(value, msgpack.ExtType):
        return None
    return value
