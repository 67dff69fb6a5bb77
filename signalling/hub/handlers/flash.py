"""Flash sales (秒杀) on the room channel: the host starts and stops, buyers tap 抢."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, replace
from typing import Any

from livecore import flashsale, wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.flashsale import BuyResult, FlashState
from signalling.hub.context import Context
from signalling.hub.room import LocalRoom

log = logging.getLogger("livecore.hub")

_BUY_REFUSALS = {
    -1: (ErrorCode.FLASH_NOT_FOUND, "no such flash sale in this room"),
    -3: (ErrorCode.FLASH_ENDED, "this flash sale has ended"),
    -4: (ErrorCode.FLASH_SOLD_OUT, "sold out"),
    -7: (ErrorCode.COUPON_NOT_HELD, "you hold no unused copy of that coupon"),
}


def buy_refusal(result: BuyResult) -> LivecoreError | None:
    """The error a buy's refusal code means (None: bought or already bought). Pure."""
    code, arg = result.code, result.arg
    if code >= 0:
        return None
    if code == -2:
        return LivecoreError(ErrorCode.FLASH_NOT_STARTED, f"the sale starts at {arg}")
    if code == -5:
        return LivecoreError(ErrorCode.FLASH_LIMIT, f"you may buy {max(0, arg)} more")
    if code == -6:
        return LivecoreError(ErrorCode.FLASH_SOLD_OUT, f"only {arg} left")
    if code == -8:
        return LivecoreError(ErrorCode.COUPON_MINIMUM, f"the coupon needs an order of {arg}")
    error, why = _BUY_REFUSALS[code]
    return LivecoreError(error, why)


async def flash_start(ctx: Context, message: wire.Message) -> None:
    """Start a sale on the product pinned in the room (one sale at a time)."""
    card = (await ctx.stores.bus.state(ctx.room_id)).get("card:product")
    if not isinstance(card, dict) or not card.get("name"):
        raise LivecoreError(ErrorCode.NO_PINNED_PRODUCT, "pin a product card first")
    price = card.get("price_cents")
    now = ctx.node.now()
    spec = flashsale.parse_spec(
        message.fields, str(card["name"]), price if isinstance(price, int) else None, now=now
    )
    started = await ctx.stores.flash.start(ctx.room_id, spec, now)
    if isinstance(started, str):
        raise LivecoreError(
            ErrorCode.FLASH_BUSY, f"flash sale {started} is still on: stop it first"
        )
    fid, _ = started
    ctx.node.orders.note(ctx.room_id)
    ctx.ack(message, fs=fid, starts_at=spec.starts_at, ends_at=spec.ends_at)


async def flash_stop(ctx: Context, message: wire.Message) -> None:
    """End the sale now (its ``flash_ended`` goes to the room)."""
    ended = await ctx.stores.flash.end(
        ctx.room_id, message.fields["fs"], ctx.node.now(), force=True
    )
    if isinstance(ended, int):
        raise LivecoreError(ErrorCode.FLASH_NOT_FOUND, "no such running flash sale in this room")
    _progress(ctx, ended.public())
    ctx.ack(message, **ended.public())


@dataclass(slots=True)
class FinalSale:
    """A sale that sells no more, as the store holds it for good: a tap is answered here
    exactly as the buy script would (a retried key is acked, the rest refused)."""

    state: FlashState
    holders: dict[str, int]
    keys: set[str]

    def answer(self, user: str, key: str) -> BuyResult:
        if key and f"{user}|{key}" in self.keys:
            return BuyResult(0, self.state, self.holders.get(user, 0))
        return BuyResult(-3 if self.state.status == flashsale.FlashStatus.ENDED else -4)


def _known_final(room: LocalRoom, fid: str) -> FinalSale | None:
    """The room's sale ``fid`` if this node holds it as it stays for good (sold out or
    ended, as the room has seen it last), else None."""
    final = room.flash_final
    if isinstance(final, FinalSale) and final.state.id == fid:
        seen = room.flash
        if seen is not None and seen.get("fs") == fid and seen.get("s") == "ended":
            if final.state.status != "ended":
                final.state = replace(final.state, status="ended", version=seen["v"])
        return final
    return None


async def _final(ctx: Context, room: LocalRoom, fid: str) -> FinalSale | None:
    """The room's sale ``fid`` once this node knows it sells no more (read once per node,
    the taps meanwhile share the read), else None: the tap goes to the store."""
    final = _known_final(room, fid)
    if final is not None:
        return final
    seen = room.flash
    if seen is None or seen.get("fs") != fid or seen.get("s") not in ("sold_out", "ended"):
        return None
    return await _read_final(ctx, room, fid)


async def _read_final(ctx: Context, room: LocalRoom, fid: str) -> FinalSale | None:
    """Read the sale ``fid`` as it stays for good (one read per node, shared by the taps
    meanwhile); None if it still sells."""
    task = room.flash_loading
    if task is None or task.done():
        task = asyncio.get_running_loop().create_task(ctx.stores.flash.final(ctx.room_id, fid))
        room.flash_loading = task
    read = await asyncio.shield(task)
    if read is None:
        return None
    sale = room.flash_final
    if not isinstance(sale, FinalSale) or sale.state.id != fid:
        sale = room.flash_final = FinalSale(*read)
    return sale


def _learn_final(ctx: Context, room: LocalRoom, fid: str) -> None:
    """The store refused a tap as sold out: the sale sells no more (its last unit flipped
    it in the same step), so this node reads it once now and answers the next taps
    itself, without waiting for the ``flash_sold_out`` event to come round the bus."""
    if isinstance(room.flash_final, FinalSale) and room.flash_final.state.id == fid:
        return
    task = room.flash_loading
    if task is None or task.done():
        task = asyncio.get_running_loop().create_task(ctx.stores.flash.final(ctx.room_id, fid))
        room.flash_loading = task
        task.add_done_callback(functools.partial(_keep_final, room, fid))


def _keep_final(room: LocalRoom, fid: str, task: asyncio.Task[Any]) -> None:
    """Keep what the read found (an error is only logged: taps go to the store meanwhile)."""
    if task.cancelled():
        return
    if task.exception() is not None:
        log.warning("reading a sold-out flash sale failed: %r", task.exception())
        return
    read = task.result()
    final = room.flash_final
    if read is not None and not (isinstance(final, FinalSale) and final.state.id == fid):
        room.flash_final = FinalSale(*read)


def flash_buy_now(ctx: Context, message: wire.Message) -> LivecoreError | bool:
    """A tap answered at once from the sale this node holds as it stays for good (the
    opening rush's refusals and retries, no task each): True (acked) or the refusal;
    False when the node does not hold it yet (:func:`flash_buy` runs)."""
    f = message.fields
    room = ctx.room
    final = _known_final(room, f["fs"]) if room is not None else None
    if final is None:
        return False
    result = final.answer(ctx.user, f.get("key") or "")
    refusal = buy_refusal(result)
    if refusal is not None:
        return refusal
    assert result.state is not None
    coupon = f.get("coupon") or ""
    ctx.ack(message, mine=result.mine, coupon=coupon or None, **result.state.public())
    return True


async def flash_buy(ctx: Context, message: wire.Message) -> LivecoreError | None:
    """One tap of 抢: bought (ack with the sale's state and ``mine``) or refused (the
    refusal returned, not raised: the opening rush refuses thousands of taps). Once
    the sale sells no more, taps are answered from what the node read of it once."""
    f = message.fields
    coupon = f.get("coupon") or ""
    room = ctx.room
    final = await _final(ctx, room, f["fs"]) if room is not None else None
    if final is not None:
        result = final.answer(ctx.user, f.get("key") or "")
    else:
        result = await ctx.stores.flash.buy(
            ctx.room_id, f["fs"], ctx.user, f.get("qty", 1), f.get("key") or "", coupon,
            ctx.node.now(),
        )  # fmt: skip
    refusal = buy_refusal(result)
    if refusal is not None:
        if final is None and result.code == -4 and room is not None:
            _learn_final(ctx, room, f["fs"])
        return refusal
    assert result.state is not None
    public = result.state.public()
    if result.code == 1:
        _progress(ctx, public)
        ctx.node.orders.note(ctx.room_id)
    ctx.ack(message, mine=result.mine, coupon=coupon or None, **public)
    return None


def _progress(ctx: Context, state: dict[str, object]) -> None:
    """The sale's new state goes to this node's room (next tick) and the other nodes."""
    room = ctx.room
    if room is not None and room.set_flash(dict(state)):
        room.local_commerce["flash"] = dict(state)
