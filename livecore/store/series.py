"""Sensor series of a batch on Valkey: bounded raw windows and per-minute,
per-hour and per-day aggregates in packed strings; one Lua call per post.

Layout (all under the batch's tag, see :func:`livecore.store.trace.key`):

- ``series`` hash: ``<device>/<kind>`` → ``first|last|last_units|count|excursions``
- ``raw:<sid>`` list: the newest 1,440 readings, each 6 bytes ``<I h``
  (Unix seconds, value in the kind's step), newest first
- ``agg:<level>:<sid>:<chunk>`` string: slots of 10 bytes ``<H h h i``
  (count, min, max, sum) at ``(slot % per_chunk) * 10``; level ``m`` (60 s,
  1,440 slots = one UTC day per key), ``h`` (3,600 s, 1,536 slots), ``d``
  (86,400 s, 1,024 slots). A count saturates at 65,535: later readings of the
  slot still move min and max, the mean is that of the first 65,535.
- ``exc:<sid>`` sorted set: minutes (Unix s / 60) with a reading outside the
  band, at most 20,160 (two weeks of minutes)

A year of one series at one reading a minute is 525,600 readings in ~5.3 MB
of minute slots + 88 KB of hour slots + 4 KB of day slots + 9 KB raw.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from livecore.errors import ErrorCode, LivecoreError
from livecore.store.client import StoreClient
from livecore.store.trace import PIN_TTL_S, key
from livecore.trace import series
from livecore.trace.series import Reading

SLOT = struct.Struct("<Hhhi")
RAW = struct.Struct("<Ih")
RAW_MAX = 1440
EXC_MAX = 20_160
PER_CHUNK = {"m": 1440, "h": 1536, "d": 1024}
WIDTH = dict(series.LEVELS)
N_MAX = 65_535

# KEYS[1] series hash, KEYS[2] pinned zset, then the keys the ARGV groups index.
# ARGV: max series, raw max, exc max, now - pin ttl, S, S × (sid, raw key#, first,
# last, last units, count, excursions, R, R raw entries), A, A × (key#, offset,
# n, min, max, sum), E, E × (key#, minute).
_INGEST = """
local max_series, raw_max, exc_max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ns = tonumber(ARGV[5])
local i, new = 6, 0
for s = 1, ns do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
  i = i + 8 + tonumber(ARGV[i + 7])
end
if new > 0 and redis.call('HLEN', KEYS[1]) + new > max_series then return {-1} end
i = 6
for s = 1, ns do
  local sid, kraw = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  local first, last, lu = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]
  local cnt, exc, nr = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  local prev = redis.call('HGET', KEYS[1], sid)
  if prev then
    local f, l, u, c, e = string.match(prev, '^(-?%d+)|(-?%d+)|(-?%d+)|(%d+)|(%d+)$')
    f, l, c, e = tonumber(f), tonumber(l), tonumber(c), tonumber(e)
    if f < first then first = f end
    if l > last then lu = u else l = last end
    last, cnt, exc = l, cnt + c, exc + e
  end
  redis.call('HSET', KEYS[1], sid, first .. '|' .. last .. '|' .. lu .. '|' .. cnt .. '|' .. exc)
  redis.call('LPUSH', kraw, unpack(ARGV, i + 8, i + 7 + nr))
  redis.call('LTRIM', kraw, 0, raw_max - 1)
  i = i + 8 + nr
end
local na = tonumber(ARGV[i]); i = i + 1
for a = 1, na do
  local kagg, off = KEYS[tonumber(ARGV[i])], tonumber(ARGV[i + 1])
  local dn, lo = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local hi, sum = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local cur = redis.call('GETRANGE', kagg, off, off + 9)
  if string.len(cur) == 10 then
    local n, clo, chi, csum = struct.unpack('<Hhhi', cur)
    if n > 0 then
      if clo < lo then lo = clo end
      if chi > hi then hi = chi end
      if n + dn <= 65535 then dn, sum = n + dn, csum + sum else dn, sum = n, csum end
    end
  end
  redis.call('SETRANGE', kagg, off, struct.pack('<Hhhi', dn, lo, hi, sum))
  i = i + 6
end
local ne = tonumber(ARGV[i]); i = i + 1
for e = 1, ne do
  local kexc = KEYS[tonumber(ARGV[i])]
  if redis.call('ZCARD', kexc) < exc_max then redis.call('ZADD', kexc, ARGV[i + 1], ARGV[i + 1]) end
  i = i + 2
end
return redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[4], '+inf')
"""


@dataclass(slots=True)
class _Series:
    first: int
    last: int
    last_units: int
    count: int = 0
    excursions: int = 0


class SeriesStore:
    """Write readings of a batch's devices; read them back for charts and cards."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._ingest = redis.register_script(_INGEST)

    async def ingest(self, batch: str, readings: list[Reading], *, now: int) -> list[str]:
        """Store checked readings (one script: all or nothing); returns the rooms
        the batch is pinned in (to push the readings there live). ``batch_full``
        when the post would make more than 16 series."""
        keys_: list[str] = [key(batch, "series"), key(batch, "pinned")]
        index: dict[str, int] = {}

        def k(name: str) -> int:
            if name not in index:
                keys_.append(key(batch, name))
                index[name] = len(keys_)
            return index[name]

        heads: dict[str, _Series] = {}
        raw: dict[str, list[bytes]] = {}
        slots: dict[tuple[int, int], list[int]] = {}
        minutes: set[tuple[int, int]] = set()
        for r in readings:
            h = heads.get(r.series)
            if h is None:
                h = heads[r.series] = _Series(r.at, r.at, r.units)
                raw[r.series] = []
            h.count += 1
            h.first = min(h.first, r.at)
            if r.at >= h.last:
                h.last, h.last_units = r.at, r.units
            raw[r.series].append(RAW.pack(r.at, r.units))
            for level, width in series.LEVELS:
                slot = r.at // width
                chunk, pos = divmod(slot, PER_CHUNK[level])
                agg = (k(f"agg:{level}:{r.series}:{chunk}"), pos * SLOT.size)
                s = slots.get(agg)
                if s is None:
                    slots[agg] = [1, r.units, r.units, r.units]
                elif s[0] < N_MAX:
                    s[0] += 1
                    s[1], s[2], s[3] = min(s[1], r.units), max(s[2], r.units), s[3] + r.units
                else:
                    s[1], s[2] = min(s[1], r.units), max(s[2], r.units)
            if r.excursion:
                h.excursions += 1
                minutes.add((k(f"exc:{r.series}"), r.at // 60))
        args: list[Any] = [series.MAX_SERIES, RAW_MAX, EXC_MAX, now - PIN_TTL_S, len(heads)]
        for sid, h in heads.items():
            entries = raw[sid][-RAW_MAX:]
            args += [sid, k(f"raw:{sid}"), h.first, h.last, h.last_units, h.count, h.excursions]
            args += [len(entries), *entries]
        args.append(len(slots))
        for (ki, off), (n, lo, hi, total) in slots.items():
            args += [ki, off, n, lo, hi, total]
        args.append(len(minutes))
        for ki, minute in minutes:
            args += [ki, minute]
        answer = await self._ingest(keys=keys_, args=args)
        if answer and answer[0] == -1:
            raise LivecoreError(
                ErrorCode.BATCH_FULL, f"a batch holds at most {series.MAX_SERIES} series"
            )
        return [r.decode() if isinstance(r, bytes) else str(r) for r in answer]

    async def index(self, batch: str) -> list[dict[str, Any]]:
        """Every series: ``{series, device, kind, first, last, value, count, excursions}``."""
        data: dict[Any, Any] = await self.redis.hgetall(key(batch, "series"))
        out = []
        for sid_b, value in sorted(data.items()):
            sid = sid_b.decode()
            device, _, kind_name = sid.rpartition("/")
            if kind_name not in series.KINDS:
                continue
            first, last, units, count, exc = (int(x) for x in value.decode().split("|"))
            kind = series.KINDS[kind_name]
            out.append({
                "series": sid, "device": device, "kind": kind_name, "first": first, "last": last,
                "at": last, "value": series.from_units(kind, units), "count": count,
                "excursions": exc,
            })  # fmt: skip
        return out

    async def slots(
        self, batch: str, sid: str, level: str, start: int, end: int
    ) -> list[tuple[int, int, int, int, int]]:
        """Aggregate slots ``(t, n, min, max, sum)`` of ``level`` in [start, end]."""
        width, per = WIDTH[level], PER_CHUNK[level]
        first, last = start // width, end // width
        chunks = range(first // per, last // per + 1)
        pipe = self.redis.pipeline(transaction=False)
        for chunk in chunks:
            lo = max(first, chunk * per) - chunk * per
            hi = min(last, chunk * per + per - 1) - chunk * per
            pipe.getrange(key(batch, f"agg:{level}:{sid}:{chunk}"), lo * SLOT.size,
                          (hi + 1) * SLOT.size - 1)  # fmt: skip
        out = []
        for chunk, data in zip(chunks, await pipe.execute(), strict=True):
            base = max(first, chunk * per)
            for i, (n, lo_, hi_, total) in enumerate(SLOT.iter_unpack(_whole(data))):
                if n:
                    out.append(((base + i) * width, n, lo_, hi_, total))
        return out

    async def raw(self, batch: str, sid: str) -> list[tuple[int, int]]:
        """The raw window, oldest first: ``(t, units)``."""
        data: list[Any] = await self.redis.lrange(key(batch, f"raw:{sid}"), 0, RAW_MAX - 1)
        return sorted(RAW.unpack(d) for d in data if len(d) == RAW.size)

    async def excursions(self, batch: str, sid: str) -> list[int]:
        """Minutes (Unix s / 60) with a reading outside the band."""
        found: list[Any] = await self.redis.zrange(key(batch, f"exc:{sid}"), 0, -1)
        return [int(m) for m in found]


def _whole(data: bytes) -> bytes:
    return data[: len(data) - len(data) % SLOT.size]
