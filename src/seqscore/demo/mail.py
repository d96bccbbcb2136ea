"""One account's mail, day by day: messages in, SendGrid events out.

For each message SendGrid emits ``processed`` (or only ``dropped`` when the
recipient is on the account's suppression list), then ``delivered`` or a
``bounce``, possibly after ``deferred`` attempts; a delivered message may later
be opened (by a person, or by Apple's MPP proxy: ``sg_machine_open`` true),
clicked, reported as spam or followed by an unsubscribe. Times follow the
message: delivery seconds after processing, deferrals minutes to hours apart,
reads minutes to days later.

Each event goes to ``post(timestamp, event)`` as soon as it is decided, in no
particular time order; ``webhook.Outbox`` orders them by arrival. Events dated
at or after ``end_ts`` are never made.

Speed: this is the hot loop of the demo (millions of events). Delays are drawn
from precomputed quantile tables (one ``random()`` each), shared fields of a
message are built once, and attribute lookups are hoisted into locals.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import random
import statistics
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seqscore.demo import payloads as pl
from seqscore.demo.audience import Audience
from seqscore.demo.plans import AccountPlan
from seqscore.demo.profiles import Delay, Rates

__all__ = ["DAY_SECONDS", "MailSimulation", "Post", "delay_table"]

DAY_SECONDS = 86_400
#: Receives (event timestamp in Unix seconds, event dict).
Post = Callable[[int, dict[str, Any]], None]

#: Relative sending activity per UTC hour of a transactional stream (US + EU audience).
DIURNAL = (2.0, 1.5, 1.0, 1.0, 1.0, 1.5, 2.5, 4.0, 5.0, 6.0, 6.5, 7.0, 7.0, 7.0, 7.5, 7.5,
           7.0, 6.5, 6.0, 5.5, 5.0, 4.0, 3.5, 2.5)
_DIURNAL_CUM = list(itertools.accumulate(DIURNAL))
#: Recipients per API request of a campaign (they share an X-Message-Id).
CAMPAIGN_REQUEST_SIZE = 1000
#: Share of people outside the engaged part of a list who still read a message.
STRAY_READ = 0.02
#: Apple's proxy fetches the pixel of this share of messages to MPP readers.
MPP_FETCH = 0.92
MPP_REPEAT = 0.15
CLICK_REPEAT = 0.25
#: Share of invalid-address bounces at ISP and company domains that come
#: asynchronously: the server accepts (``delivered``) and mails a bounce later,
#: which SendGrid posts without ``sg_message_id`` or ``smtp-id``.
ASYNC_BOUNCE = 0.3
#: Share of suppressed recipients the sender keeps mailing (SendGrid then drops
#: each message: ``dropped``, no ``processed``); the others leave the list and a
#: new subscriber takes their place.
KEEPS_SUPPRESSED = 0.2

_SEND_DELAY = Delay(0.04, 0.8, max_days=0.01)
_MPP_DELAY = Delay(12, 1.4, max_days=2)
_REPEAT_OPEN_DELAY = Delay(180, 1.6)
_CLICK_DELAY = Delay(0.8, 1.2, max_days=1)
_UNSUBSCRIBE_DELAY = Delay(1.5, 1.0, max_days=1)
_ASYNC_BOUNCE_DELAY = Delay(20, 1.2, max_days=2)
_TABLE_SIZE = 4096


@functools.lru_cache(maxsize=64)
def delay_table(delay: Delay) -> tuple[int, ...]:
    """``_TABLE_SIZE`` quantiles of ``delay`` in whole seconds (at least 1, at most
    its cap): ``table[int(random() * len(table))]`` draws from the distribution."""
    normal = statistics.NormalDist()
    return tuple(
        min(delay.max_seconds, max(1, int(math.exp(
            delay.mu + delay.spread * normal.inv_cdf((i + 0.5) / _TABLE_SIZE)))))
        for i in range(_TABLE_SIZE)
    )


@dataclass(frozen=True, slots=True)
class _Odds:
    """Per-message probabilities (0..1) derived from a day's ``Rates`` and the list."""

    invalid: float
    block: float
    content_block: float
    other_bounce: float
    deferred: float
    read_engaged: float
    read_stray: float
    click_per_read: float
    unsubscribe_per_read: float
    complaint_per_fbl_delivery: float

    @classmethod
    def of(cls, rates: Rates, audience: Audience) -> _Odds:
        # Human opens are only seen from non-MPP readers, so people read more than measured.
        read = min(1.0, rates.human_open_pct / 100 / (1.0 - audience.mpp_share))
        engaged = max(sum(audience.engaged) / len(audience), 1e-9)
        stray = min(read, STRAY_READ)
        read_engaged = min(1.0, (read - (1 - engaged) * stray) / engaged)
        return cls(
            invalid=rates.invalid_bounce_pct / 100, block=rates.block_pct / 100,
            content_block=rates.content_block_pct / 100,
            other_bounce=rates.other_bounce_pct / 100, deferred=rates.deferred_pct / 100,
            read_engaged=read_engaged, read_stray=stray,
            click_per_read=min(1.0, rates.click_pct / 100 / read) if read else 0.0,
            unsubscribe_per_read=min(1.0, rates.unsubscribe_pct / 100 / read) if read else 0.0,
            complaint_per_fbl_delivery=min(
                1.0, rates.complaint_pct / 100 / audience.feedback_loop_share),
        )


class MailSimulation:
    """Simulates one account's sending over ``days`` UTC days from ``start_ts``.

    ``run_day(d)`` sends day ``d``'s messages (0-based) and posts their events,
    including those dated on later days (opens, reports); call it for each day
    in order. Deterministic for a given ``rng`` state.
    """

    def __init__(self, plan: AccountPlan, rng: random.Random, *, start_ts: int, days: int,
                 end_ts: int, post: Post) -> None:
        self.plan = plan
        self.profile = profile = plan.profile.scaled(plan.volume_scale)
        self.rng = rng
        self.start_ts, self.days, self.end_ts, self.post = start_ts, days, end_ts, post
        self.audience = Audience.build(rng, profile.provider_mix, profile.audience_size,
                                       mpp_pct=profile.mpp_pct, engaged_pct=profile.engaged_pct)
        self.user = 10_000_000 + zlib.crc32(plan.username.encode()) % 90_000_000
        self.ips = pl.sending_ips(rng, 2)
        self.pods = pl.pod_names(rng, 3)
        self.custom = dict(profile.custom_args)
        self.categories: list[str | list[str]] = [
            list(c) if isinstance(c, tuple) else c for c in profile.categories]
        #: recipient index -> (suppressed from, SendGrid's drop reason, still mailed)
        self.suppressed: dict[int, tuple[int, str, bool]] = {}
        self._odds: dict[Rates, _Odds] = {}
        self._requests = 0
        self._other_cum = list(itertools.accumulate(w for w, _ in pl.OTHER_BOUNCES))
        self._other = [b for _, b in pl.OTHER_BOUNCES]
        self._read_delay = delay_table(profile.read_delay)
        self._complaint_delay = delay_table(profile.complaint_delay)

    def _suppress(self, r: int, t: int, reason: str) -> None:
        if r not in self.suppressed:
            self.suppressed[r] = (t, reason, self.rng.random() < KEEPS_SUPPRESSED)

    def _volume(self, day: int) -> int:
        p = self.profile
        weekday = (dt.date(1970, 1, 1) + dt.timedelta(
            days=(self.start_ts // DAY_SECONDS) + day)).weekday()
        mean = p.daily_messages * p.weekday_weights[weekday]
        if mean <= 0:
            return 0
        n = mean * self.rng.lognormvariate(-p.daily_spread ** 2 / 2, p.daily_spread)
        return int(n + self.rng.random())

    def run_day(self, day: int) -> None:
        """Send day ``day``'s messages and post every event they cause."""
        p, rng = self.profile, self.rng
        rates = p.rates_at(100.0 * day / max(1, self.days - 1))
        odds = self._odds.get(rates)
        if odds is None:
            odds = self._odds[rates] = _Odds.of(rates, self.audience)
        n = self._volume(day)
        if n == 0:
            return
        day_ts = self.start_ts + day * DAY_SECONDS
        size = len(self.audience)
        if p.send_hour_utc is not None:
            n = min(n, size)
            recipients = rng.sample(range(size), n)
            start, burst = day_ts + p.send_hour_utc * 3600, p.send_minutes * 60
            times = [start + i * burst // n for i in range(n)]
            per_request = CAMPAIGN_REQUEST_SIZE
        else:
            random_ = rng.random
            recipients = [int(random_() * size) for _ in range(n)]
            hours = rng.choices(range(24), cum_weights=_DIURNAL_CUM, k=n)
            times = sorted(day_ts + h * 3600 + int(random_() * 3600) for h in hours)
            per_request = 1
        request_id, index, pod, host = "", per_request, self.pods[0], 1
        for i in range(n):
            if index >= per_request:
                request_id, index = pl.random_id(rng), 0
                self._requests += 1
                pod = self.pods[self._requests % len(self.pods)]
                host = 1 + self._requests % 8
            t0 = times[i]
            self._message(t0, recipients[i], odds, request_id, index,
                          f"{request_id}.filterdrecv-{pod}-1-{t0:X}-{self._requests:X}.{index}",
                          f"<{request_id}@geopod-ismtpd-{host}>")
            index += 1

    def _message(self, t0: int, r: int, odds: _Odds, request_id: str, index: int, mid: str,
                 smtp: str) -> None:
        rng, post, aud = self.rng, self.post, self.audience
        random_ = rng.random
        invalid = random_() < odds.invalid
        held = None
        if invalid:
            address, group, _ = aud.stranger(rng)
        else:
            held = self.suppressed.get(r)
            if held is not None and held[0] <= t0 and not held[2]:
                # The sender removed the address; a new subscriber has its slot.
                del self.suppressed[r]
                aud.renew(rng, r)
                held = None
            address, group = aud.addresses[r], aud.groups[r]
        categories = self.categories
        head: dict[str, Any] = {
            "email": address, "smtp-id": smtp,
            "category": categories[int(random_() * len(categories))], "sg_message_id": mid,
            **self.custom}
        ids = f"-{self.user}-{request_id}-{index}".encode()
        event_id = pl.delivery_event_id
        if not invalid and held is not None and held[0] <= t0:
            post(t0, {**head, "timestamp": t0, "event": "dropped",
                      "sg_event_id": event_id(b"dropped-0", ids), "reason": held[1],
                      "status": "5.0.0"})
            return
        post(t0, {**head, "timestamp": t0, "event": "processed",
                  "sg_event_id": event_id(b"processed-0", ids)})
        ip = self.ips[index & 1]
        send_delay = delay_table(_SEND_DELAY)
        t = t0 + send_delay[int(random_() * _TABLE_SIZE)]
        if invalid:
            status, reason = pl.invalid_bounce(group, address)
            if group in ("isp", "corporate") and random_() < ASYNC_BOUNCE:
                self._delivered(head, t, ip, group, ids)
                tb = t + delay_table(_ASYNC_BOUNCE_DELAY)[int(random_() * _TABLE_SIZE)]
                post(tb, {"email": address, "timestamp": tb, "event": "bounce",
                          "bounce_classification": "Invalid Address",
                          "sg_event_id": pl.random_id(rng), "reason": reason,
                          "status": status, "type": "bounce"})
            else:
                post(t, {**head, "timestamp": t, "event": "bounce", "ip": ip,
                         "bounce_classification": "Invalid Address",
                         "sg_event_id": event_id(b"bounce-0", ids), "reason": reason,
                         "status": status, "tls": 1, "type": "bounce"})
            return
        bounce = self._bounce(group, odds)
        if bounce is None and random_() < odds.deferred * pl.DEFERRAL_FACTOR.get(group, 1.0):
            wait = 300 + int(random_() * 600)
            for attempt in range(1, 2 + (random_() < 0.35) + (random_() < 0.12)):
                post(t, {**head, "timestamp": t, "event": "deferred", "ip": ip,
                         "sg_event_id": event_id(b"deferred-%d" % attempt, ids),
                         "response": pl.deferral_response(group, ip, attempt == 1),
                         "attempt": str(attempt), "tls": 1})
                t += wait
                wait *= 2
        if bounce is not None:
            kind, klass, code, text = bounce
            ev: dict[str, Any] = {
                **head, "timestamp": t, "event": "bounce", "ip": ip,
                "bounce_classification": klass, "sg_event_id": event_id(b"bounce-0", ids),
                "reason": text.format(ip=ip), "tls": 1, "type": kind}
            if code is not None:
                ev["status"] = code
            post(t, ev)
            if kind == "bounce":
                self._suppress(r, t, "Bounced Address")
            return
        self._delivered(head, t, ip, group, ids)
        if t < self.end_ts:
            self._engage(r, t, head, group, odds)

    def _bounce(self, group: str, odds: _Odds) -> pl.Bounce | None:
        """The failure of a message to a list address, or None when it gets through."""
        random_ = self.rng.random
        p = self.profile
        if group == p.block_provider and random_() < odds.block:
            return pl.BLOCK_REASONS.get((group, p.block_class), (
                "blocked", p.block_class, "5.7.1",
                "550 5.7.1 Message rejected: [{ip}] listed for poor reputation"))
        u = random_()
        if u < odds.content_block:
            return pl.CONTENT_BLOCKS[int(random_() * len(pl.CONTENT_BLOCKS))]
        if u < odds.content_block + odds.other_bounce:
            return self.rng.choices(self._other, cum_weights=self._other_cum)[0]
        return None

    def _delivered(self, head: dict[str, Any], t: int, ip: str, group: str,
                   ids: bytes) -> None:
        token = head["sg_message_id"][:12].lower()
        self.post(t, {**head, "timestamp": t, "event": "delivered", "ip": ip,
                      "sg_event_id": pl.delivery_event_id(b"delivered-0", ids),
                      "response": pl.delivered_response(group, t, token), "tls": 1})

    def _engage(self, r: int, t_delivered: int, head: dict[str, Any], group: str,
                odds: _Odds) -> None:
        """Opens, clicks, unsubscribes and spam reports of one delivered message."""
        rng, post, aud, p = self.rng, self.post, self.audience, self.profile
        random_ = rng.random
        end = self.end_ts
        tracking = self.plan.open_tracking
        mpp = aud.mpp[r]
        base: dict[str, Any] | None = None
        if tracking and mpp and random_() < MPP_FETCH:
            base = {"email": head["email"], "category": head["category"],
                    "sg_message_id": head["sg_message_id"], **self.custom}
            t = t_delivered + delay_table(_MPP_DELAY)[int(random_() * _TABLE_SIZE)]
            while t < end:
                agent, ip = pl.machine_opener(rng)
                post(t, {**base, "timestamp": t, "event": "open", "sg_machine_open": True,
                         "sg_event_id": pl.random_id(rng), "useragent": agent, "ip": ip})
                if random_() >= MPP_REPEAT:
                    break
                t += delay_table(_REPEAT_OPEN_DELAY)[int(random_() * _TABLE_SIZE)]
        if random_() < (odds.read_engaged if aud.engaged[r] else odds.read_stray):
            t_read = t_delivered + self._read_delay[int(random_() * _TABLE_SIZE)]
            if t_read < end:
                if base is None:
                    base = {"email": head["email"], "category": head["category"],
                            "sg_message_id": head["sg_message_id"], **self.custom}
                if tracking and not mpp:
                    self._opens(base, t_read, group)
                if random_() < odds.click_per_read:
                    self._clicks(base, t_read)
                if random_() < odds.unsubscribe_per_read:
                    t = t_read + delay_table(_UNSUBSCRIBE_DELAY)[int(random_() * _TABLE_SIZE)]
                    ev = {**base, "timestamp": t, "event": "unsubscribe",
                          "sg_event_id": pl.random_id(rng)}
                    if p.asm_group_id is not None:
                        agent, ip = pl.clicker(rng)
                        ev.update(event="group_unsubscribe", asm_group_id=p.asm_group_id,
                                  useragent=agent, ip=ip)
                    post(t, ev)
                    self._suppress(r, t, "Unsubscribed Address")
        if aud.feedback_loop[r] and random_() < odds.complaint_per_fbl_delivery:
            t = t_delivered + self._complaint_delay[int(random_() * _TABLE_SIZE)]
            post(t, {"email": head["email"], "category": head["category"],
                     "sg_message_id": head["sg_message_id"], **self.custom,
                     "timestamp": t, "event": "spamreport", "sg_event_id": pl.random_id(rng)})
            self._suppress(r, t, "Spam Reporting Address")

    def _opens(self, base: dict[str, Any], t: int, group: str) -> None:
        """A person's open, and repeat opens (another look, another device)."""
        rng, end = self.rng, self.end_ts
        random_ = rng.random
        repeat = self.profile.repeat_open_pct / 100
        again = delay_table(_REPEAT_OPEN_DELAY)
        while t < end:
            agent, ip = pl.opener(group, rng)
            self.post(t, {**base, "timestamp": t, "event": "open", "sg_machine_open": False,
                          "sg_event_id": pl.random_id(rng), "useragent": agent, "ip": ip})
            if random_() >= repeat:
                break
            t += again[int(random_() * _TABLE_SIZE)]

    def _clicks(self, base: dict[str, Any], t_read: int) -> None:
        rng, end, links = self.rng, self.end_ts, self.profile.links
        random_ = rng.random
        delays = delay_table(_CLICK_DELAY)
        t = t_read + delays[int(random_() * _TABLE_SIZE)]
        while t < end:
            agent, ip = pl.clicker(rng)
            self.post(t, {**base, "timestamp": t, "event": "click",
                          "sg_event_id": pl.random_id(rng), "useragent": agent, "ip": ip,
                          "url": links[int(random_() * len(links))],
                          "url_offset": {"index": 0, "type": "html"}})
            if random_() >= CLICK_REPEAT:
                break
            t += delays[int(random_() * _TABLE_SIZE)]
