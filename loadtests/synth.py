"""A seedable generator of realistic live-commerce audience traces, with true highlights.

The shape of one session (all drawn from ``random.Random(seed)``, so the same
seed and settings give the same trace, event for event):

- **Audience.** Concurrency follows a curve: a ramp over the first fifth, a
  plateau that swells after each product pin, a decline over the last
  sixth. Viewers arrive as a Poisson process whose rate keeps the curve
  (Little's law: arrivals = growth + audience / mean stay) and stay a
  log-normal time (median ~2 min).
- **Communities.** Each viewer belongs to one residential compound; compound
  sizes follow a Zipf law and each viewer has their own activity factor, so a
  few compounds and a few people make most of the noise.
- **The host's script.** A product pin every 60–100 s, its group buy opened a
  few seconds later; half the pins get a price drop 20–40 s on; two polls.
- **Reactions.** Comments and likes are Poisson per second, multiplied during
  a reaction: it starts ``lag_s`` after the moment (2–8 s for a pin, 1.5–5 s
  for a price drop: chat lags the stream and people type), peaks and decays
  over 8–25 s. Two spontaneous moments (no host action) react the same way.
  Group joins follow pins (slowly) and price drops (in a burst), by
  compound; votes follow polls; a few buyers sign up as share officers.
- **Reconnect storms.** Once or twice a large share of the audience
  reconnects within 3 s (a network blip): many joins, not a highlight.
- **Media.** About a third of viewers start a video player after joining.

Every reaction is labelled (``trace.Label``): ``start_s`` the moment on
stream, ``end_s`` the end of the audience's reaction, ``reason`` and the
``lag_s`` drawn for it — the ground truth a highlight detector is scored on.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

from livecore.audience.trace import HOST, Event, Kind, Label, Trace

MIN_COMMENT_GAP_S = 5.0
"""One viewer types at most one comment per this many seconds."""


@dataclass(frozen=True)
class SynthConfig:
    """What kind of session to generate. Rates are per present viewer per second."""

    duration_s: float = 600.0
    peak_viewers: int = 300
    communities: int = 12
    comment_rate: float = 1 / 90
    like_rate: float = 1 / 40
    mean_stay_s: float = 150.0
    media_share: float = 0.3
    seed: int = 1


@dataclass
class _Viewer:
    client: int
    arrive: float
    leave: float
    community: int
    activity: float
    last_comment: float = -1e9


@dataclass(frozen=True)
class _Reaction:
    moment: float
    lag: float
    length: float
    intensity: float
    reason: str

    def multiplier(self, t: float) -> float:
        u = (t - self.moment - self.lag) / self.length
        if u < 0 or u > 1:
            return 0.0
        return (self.intensity - 1) * (1 - 0.6 * u)  # sharp start, decays


def audience_curve(t: float, cfg: SynthConfig, pins: list[float]) -> float:
    """Target concurrency at ``t``: ramp, plateau with swells after pins, decline."""
    d = cfg.duration_s
    ramp = min(1.0, t / (0.2 * d))
    tail = min(1.0, max(0.4, (d - t) / (d / 6)))
    swell = sum(0.15 * math.exp(-(t - p) / 40) for p in pins if 0 <= t - p < 120)
    return cfg.peak_viewers * ramp * tail * min(1.0, 0.85 + swell)


def generate(cfg: SynthConfig) -> Trace:
    """One session's trace (see the module doc); deterministic for ``cfg.seed``."""
    rng = random.Random(cfg.seed)
    d = cfg.duration_s
    events: list[Event] = []
    weights = [1 / (i + 1) ** 1.2 for i in range(cfg.communities)]

    # -- the host's script and the reactions it causes --
    pins: list[float] = []
    t = 30.0
    while t < d - 30:
        pins.append(t)
        t += rng.uniform(60, 100)
    reactions: list[_Reaction] = []
    drops: list[float] = []
    gbs: list[float] = []
    price = 3990
    for pin in pins:
        price = rng.choice((1990, 2990, 3990, 5990, 9900))
        events.append(Event(_ms(pin), HOST, Kind.PRODUCT_PIN, -1, price))
        reactions.append(_Reaction(pin, rng.uniform(2, 8), rng.uniform(10, 25),
                                   rng.uniform(3, 6), "product_pin"))  # fmt: skip
        gb = pin + rng.uniform(2, 5)
        gbs.append(gb)
        events.append(Event(_ms(gb), HOST, Kind.GROUPBUY_OPEN, -1, price))
        if rng.random() < 0.5 and pin + 45 < d:
            drop = pin + rng.uniform(20, 40)
            drops.append(drop)
            events.append(Event(_ms(drop), HOST, Kind.PRICE_DROP, -1, price * 8 // 10))
            reactions.append(_Reaction(drop, rng.uniform(1.5, 5), rng.uniform(8, 20),
                                       rng.uniform(4, 8), "price_drop"))  # fmt: skip
    polls = sorted(rng.uniform(0.25 * d, 0.9 * d) for _ in range(2))
    for poll in polls:
        events.append(Event(_ms(poll), HOST, Kind.POLL_OPEN, -1, 3))
    for _ in range(2):
        moment = rng.uniform(0.2 * d, 0.95 * d)
        reactions.append(_Reaction(moment, rng.uniform(2, 6), rng.uniform(8, 18),
                                   rng.uniform(3, 5), "host_moment"))  # fmt: skip

    # -- who is there: arrivals keep the curve, stays are log-normal --
    viewers: list[_Viewer] = []
    sigma = 0.8
    mu = math.log(cfg.mean_stay_s) - sigma**2 / 2
    for second in range(int(d)):
        now, nxt = audience_curve(second, cfg, pins), audience_curve(second + 1, cfg, pins)
        rate = max(0.0, nxt - now) + now / cfg.mean_stay_s
        for _ in range(_poisson(rng, rate)):
            arrive = second + rng.random()
            stay = rng.lognormvariate(mu, sigma)
            community = rng.choices(range(cfg.communities), weights)[0]
            activity = min(4.0, rng.lognormvariate(0, 0.7))
            viewers.append(_Viewer(len(viewers) + 1, arrive, arrive + stay, community, activity))
    for v in viewers:
        events.append(Event(_ms(v.arrive), v.client, Kind.JOIN, v.community))
        if v.leave < d:
            events.append(Event(_ms(v.leave), v.client, Kind.LEAVE, v.community))
        if rng.random() < cfg.media_share:
            start = v.arrive + rng.uniform(0.5, 2)
            if start < min(v.leave, d):
                events.append(Event(_ms(start), v.client, Kind.MEDIA_START, v.community))
                if v.leave < d:
                    events.append(Event(_ms(v.leave) - 1, v.client, Kind.MEDIA_STOP, v.community))
    arrivals = [v.arrive for v in viewers]

    def present(t: float) -> list[_Viewer]:
        return [v for v in viewers[: bisect.bisect_right(arrivals, t)] if v.leave > t]

    # -- comments and likes, second by second --
    for second in range(int(d)):
        here = present(second + 0.5)
        if not here:
            continue
        boost = 1 + sum(r.multiplier(second + 0.5) for r in reactions)
        loudness = [v.activity * weights[v.community] * cfg.communities for v in here]
        for _ in range(_poisson(rng, len(here) * cfg.comment_rate * boost)):
            v = rng.choices(here, loudness)[0]
            at = second + rng.random()
            if at - v.last_comment < MIN_COMMENT_GAP_S:
                continue
            v.last_comment = at
            length = 1 + min(199, int(rng.lognormvariate(math.log(10 if boost < 2 else 4), 0.6)))
            events.append(Event(_ms(at), v.client, Kind.COMMENT, v.community, length))
        for _ in range(_poisson(rng, len(here) * cfg.like_rate * boost)):
            v = rng.choices(here, loudness)[0]
            taps = min(50, 1 + int(rng.expovariate(1 / (2 if boost < 2 else 6))))
            at = second + rng.random()
            events.append(Event(_ms(at), v.client, Kind.LIKE, v.community, taps))

    # -- votes after polls, group joins after group buys and price drops --
    for poll in polls:
        for v in present(poll):
            if rng.random() < 0.35:
                at = poll + rng.expovariate(1 / 8)
                if at < min(v.leave, d):
                    option = rng.choices((0, 1, 2), (5, 3, 2))[0]
                    events.append(Event(_ms(at), v.client, Kind.VOTE, v.community, option))
    buyers: set[int] = set()
    for start, chance, mean_delay in [(g, 0.12, 25.0) for g in gbs] + [
        (x, 0.10, 5.0) for x in drops
    ]:
        for v in present(start):
            keen = chance * min(3.0, weights[v.community] * cfg.communities / 2 + 0.3)
            if rng.random() >= keen:
                continue
            at = start + rng.expovariate(1 / mean_delay)
            if at >= min(v.leave, d):
                continue
            events.append(Event(_ms(at), v.client, Kind.GROUP_JOIN, v.community,
                                rng.choice((1, 1, 1, 2, 3))))  # fmt: skip
            if rng.random() < 0.05 and at + 5 < min(v.leave, d):
                leave_at = at + min(rng.expovariate(1 / 30), min(v.leave, d) - at - 1)
                events.append(Event(_ms(leave_at), v.client, Kind.GROUP_LEAVE, v.community))
            elif v.client not in buyers and rng.random() < 0.04:
                sign_up = at + rng.uniform(10, 60)
                if sign_up < min(v.leave, d):
                    buyers.add(v.client)
                    events.append(Event(_ms(sign_up), v.client, Kind.OFFICER_APPLY, v.community))

    # -- reconnect storms --
    storms = [rng.uniform(0.3 * d, 0.9 * d) for _ in range(1 if d < 400 else 2)]
    for storm in storms:
        share = rng.uniform(0.2, 0.4)
        for v in present(storm):
            at = storm + rng.uniform(0, 3)
            if rng.random() < share and at < min(v.leave, d):
                events.append(Event(_ms(at), v.client, Kind.RECONNECT, v.community))

    events.sort(key=lambda e: (e.t_ms, e.kind != Kind.JOIN, e.client))
    events = _well_formed(events)
    labels = sorted(
        (Label(round(r.moment, 2), round(r.moment + r.lag + r.length, 2), r.reason,
               round(r.lag, 2)) for r in reactions if r.moment < d),
        key=lambda x: x.start_s,
    )  # fmt: skip
    return Trace(
        events=events,
        duration_s=d,
        communities=[f"compound-{i:02d}" for i in range(cfg.communities)],
        labels=labels,
        source="synthetic",
        meta={"generator": "loadtests.synth", "seed": cfg.seed,
              "peak_viewers": cfg.peak_viewers, "storms_s": [round(s, 1) for s in storms]},
    )  # fmt: skip


def _well_formed(events: list[Event]) -> list[Event]:
    """Drop what a client could not do: act before its join or after its leave."""
    live: set[int] = {HOST}
    out = []
    for event in events:
        if event.kind == Kind.JOIN:
            live.add(event.client)
        elif event.client not in live:
            continue
        elif event.kind == Kind.LEAVE:
            live.discard(event.client)
        out.append(event)
    return out


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def main(argv: list[str]) -> int:
    """``python -m loadtests synth``: write a synthetic session's trace file."""
    import argparse
    from pathlib import Path

    from livecore.audience.trace import write_trace
    from loadtests.stats import HelpFormatter, log
    from loadtests.verdict import finish

    parser = argparse.ArgumentParser(
        prog="python -m loadtests synth", description=__doc__,
        formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="trace file to write (.lctrace)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same trace (default 1)")
    parser.add_argument("--minutes", type=float, default=10, help="session length (default 10)")
    parser.add_argument("--viewers", type=int, default=300, help="peak audience (default 300)")
    parser.add_argument("--communities", type=int, default=12, help="compounds (default 12)")
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 600 or not 1 <= args.viewers <= 100_000:
        parser.error("--minutes must be 1..600 and --viewers 1..100000")
    if not 1 <= args.communities <= 1000:
        parser.error("--communities must be 1..1000")
    cfg = SynthConfig(duration_s=60 * args.minutes, peak_viewers=args.viewers,
                      communities=args.communities, seed=args.seed)  # fmt: skip
    trace = generate(cfg)
    write_trace(args.out, trace)
    log(
        f"synth: {len(trace.events)} events, {trace.clients - 1} viewers, "
        f"{len(trace.labels)} labelled moments → {args.out} ({args.out.stat().st_size} bytes)"
    )
    written = {"out": str(args.out), "events": len(trace.events), "viewers": trace.clients - 1,
               "labels": len(trace.labels), "bytes": args.out.stat().st_size}  # fmt: skip
    return finish("synth", written)
