"""The texts of SendGrid events: ids, SMTP responses, bounce reasons, user agents, IPs.

Shapes follow what SendGrid posts today: ``sg_message_id`` is the request's
22-character ``X-Message-Id`` + ``.filterdrecv-<pod>-1-<hex epoch>-<hex
counter>.<recipient index>``; ``smtp-id`` is ``<X-Message-Id@geopod-ismtpd-N>``;
delivery events carry ``sg_event_id`` = base64 of
``<event>-<n>-<user id>-<X-Message-Id>-<recipient index>``, engagement events a
random 22-character URL-safe base64 id. Responses quote each provider's real
wording. IP addresses of people are from the documentation ranges (RFC 5737);
mailbox providers' image proxies use their published ranges.
"""

from __future__ import annotations

import base64
import random

__all__ = [
    "BLOCK_REASONS",
    "CONTENT_BLOCKS",
    "DEFERRAL_FACTOR",
    "MACHINE_OPENER",
    "OTHER_BOUNCES",
    "Bounce",
    "clicker",
    "deferral_response",
    "delivered_response",
    "delivery_event_id",
    "invalid_bounce",
    "machine_opener",
    "opener",
    "pod_names",
    "random_id",
    "sending_ips",
]

#: (type, SendGrid's bounce_classification, status or None, reason with ``{ip}``)
Bounce = tuple[str, str, str | None, str]

_b64 = base64.b64encode
_urlsafe = base64.urlsafe_b64encode


def random_id(rng: random.Random) -> str:
    """22 characters of URL-safe base64 (128 random bits), like ``rWVYmVk90MjZJ9iohOBa3w``."""
    return _urlsafe(rng.getrandbits(128).to_bytes(16, "little"))[:22].decode("ascii")


def delivery_event_id(event_n: bytes, message: bytes) -> str:
    """SendGrid's id of a delivery event: base64 of ``event-n`` + ``-user-request-index``
    (``message``, built once per message)."""
    return _b64(event_n + message).decode("ascii")


_RESPONSES = {
    "gmail": "250 2.0.0 OK  %d %s - gsmtp",
    "microsoft": "250 2.6.0 [InternalId=1%d] <%s@geopod-ismtpd> Queued mail for delivery",
    "yahoo": "250 ok dirdel %d %s",
    "apple": "250 2.0.0 Ok: %d queued as %s",
}
_RESPONSE = "250 2.0.0 Ok: %d queued as %s"


def delivered_response(group: str, t: int, token: str) -> str:
    """The receiving server's 250 answer, in the provider's words."""
    return _RESPONSES.get(group, _RESPONSE) % (t, token)


_DEFERRALS = {
    "gmail": ("421-4.7.28 [{ip}] Our system has detected an unusual rate of unsolicited mail "
              "originating from your IP address. To protect our users from spam, mail sent "
              "from your IP address has been temporarily rate limited."),
    "microsoft": "451 4.7.500 Server busy. Please try again later from [{ip}]. (S77719)",
    "yahoo": ("421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected "
              "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/"
              "error-codes"),
    "apple": "450 4.2.1 Mailbox temporarily unavailable",
}
#: How much more often than average a provider defers (Yahoo throttles most).
DEFERRAL_FACTOR = {"yahoo": 3.0, "microsoft": 1.5, "gmail": 0.8}


def deferral_response(group: str, ip: str, greylist: bool) -> str:
    """A 4xx answer; ``greylist`` picks greylisting for other domains."""
    if group in _DEFERRALS:
        return _DEFERRALS[group].format(ip=ip)
    if greylist:
        return "451 4.7.1 Greylisting in action, please come back later"
    return "421 4.4.2 Connection timed out"


def invalid_bounce(group: str, address: str) -> tuple[str, str]:
    """(status, reason) of a bounce for an address that does not exist."""
    if group == "gmail":
        return "5.1.1", ("550 5.1.1 The email account that you tried to reach does not exist. "
                         "Please try double-checking the recipient's email address for typos "
                         "or unnecessary spaces. For more information, go to "
                         "https://support.google.com/mail/?p=NoSuchUser")
    if group == "microsoft":
        return "5.5.0", ("550 5.5.0 Requested action not taken: mailbox unavailable "
                         "(S2017062302).")
    if group == "yahoo":
        return "5.0.0", (f"554 delivery error: dd This user doesn't have a "
                         f"{address.rpartition('@')[2]} account ({address}) [0] - "
                         f"mta1002.mail.gq1.yahoo.com")
    return "5.1.1", f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


#: (provider, class) -> the block SendGrid reports (type ``blocked``).
BLOCK_REASONS: dict[tuple[str, str], Bounce] = {
    ("microsoft", "Reputation"): (
        "blocked", "Reputation", "5.7.1",
        "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list "
        "(S3150). You can also refer your provider to "
        "http://mail.live.com/mail/troubleshooting.aspx#errors."),
    ("gmail", "Reputation"): (
        "blocked", "Reputation", "5.7.1",
        "550-5.7.1 Our system has detected that this message is likely suspicious due to the "
        "very low reputation of the sending domain. To best protect our users from spam, the "
        "message has been blocked."),
    ("yahoo", "Reputation"): (
        "blocked", "Reputation", "5.7.9",
        "554 5.7.9 Message not accepted for policy reasons. See "
        "https://senders.yahooinc.com/error-codes"),
    ("gmail", "Content"): (
        "blocked", "Content", "5.7.1",
        "550-5.7.1 Our system has detected that this message is likely unsolicited mail. To "
        "reduce the amount of spam sent to Gmail, this message has been blocked."),
    ("microsoft", "Frequency or Volume Too High"): (
        "blocked", "Frequency or Volume Too High", "4.7.0",
        "421 4.7.0 Temporary rejection: too many connections from [{ip}] (S3114)"),
}

#: Blocks for content or reputation at any provider: spam traps, DNSBLs, filters.
CONTENT_BLOCKS: tuple[Bounce, ...] = (
    ("blocked", "Reputation", "5.7.1",
     "554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org"),
    ("blocked", "Content", "5.7.1", "554 5.7.1 Message rejected as spam by Content Filtering."),
    ("bounce", "Content", "5.7.1", "550 5.7.1 Message rejected due to content restrictions"),
)

#: (weight, bounce) of failures the model does not score: full mailboxes, technical
#: faults, unknown hosts (SendGrid sends no ``status`` for those), rate limits.
OTHER_BOUNCES: tuple[tuple[float, Bounce], ...] = (
    (45.0, ("bounce", "Mailbox Unavailable", "5.2.2",
            "552 5.2.2 The email account that you tried to reach is over quota.")),
    (25.0, ("blocked", "Technical", "4.4.7",
            "4.4.7 Message expired: unable to deliver in 4320 minutes.")),
    (12.0, ("blocked", "Technical Failure", "5.4.1",
            "550 5.4.1 Recipient address rejected: Access denied.")),
    (10.0, ("blocked", "Unclassified", None,
            "unable to get mx info: failed to get IPs from PTR record: lookup <nil>: "
            "unrecognized address")),
    (8.0, ("blocked", "Frequency or Volume Too High", "4.7.0",
           "421 4.7.0 Try again later, closing connection. (EHLO)")),
)

_PEOPLE_IPS = tuple(f"{net}.{n}" for net in ("198.51.100", "203.0.113") for n in range(1, 255))
_PROXIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gmail": (("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
               "(via ggpht.com GoogleImageProxy)",),
              tuple(f"66.249.{a}.{b}" for a in (84, 88, 91) for b in range(1, 64))),
    "yahoo": (("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",),
              tuple(f"98.137.{a}.{b}" for a in (28, 29) for b in range(1, 64))),
}
_MAIL_CLIENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1",
)
#: What Apple's MPP proxy sends when it prefetches: a bare agent from Apple's relays.
MACHINE_OPENER = ("Mozilla/5.0", tuple(f"17.58.{a}.{b}" for a in (60, 63) for b in range(1, 64)))
_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
)


def opener(group: str, rng: random.Random) -> tuple[str, str]:
    """(useragent, ip) of a human open: the provider's image proxy, or a mail client."""
    proxy = _PROXIES.get(group)
    if proxy is not None:
        agents, ips = proxy
        return agents[0], ips[int(rng.random() * len(ips))]
    return (_MAIL_CLIENTS[int(rng.random() * len(_MAIL_CLIENTS))],
            _PEOPLE_IPS[int(rng.random() * len(_PEOPLE_IPS))])


def machine_opener(rng: random.Random) -> tuple[str, str]:
    """(useragent, ip) of an Apple MPP prefetch."""
    agent, ips = MACHINE_OPENER
    return agent, ips[int(rng.random() * len(ips))]


def clicker(rng: random.Random) -> tuple[str, str]:
    """(useragent, ip) of a click: a browser on a person's device."""
    return (_BROWSERS[int(rng.random() * len(_BROWSERS))],
            _PEOPLE_IPS[int(rng.random() * len(_PEOPLE_IPS))])


def sending_ips(rng: random.Random, k: int) -> tuple[str, ...]:
    """``k`` distinct dedicated sending IPs of an account (TEST-NET-1)."""
    return tuple(f"192.0.2.{n}" for n in rng.sample(range(10, 250), k))


def pod_names(rng: random.Random, k: int) -> tuple[str, ...]:
    """``k`` names of SendGrid receiving pods, like ``5bd7b5c4b5-xkrlp``."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return tuple(f"{rng.getrandbits(40):010x}-" + "".join(rng.choices(alphabet, k=5))
                 for _ in range(k))
