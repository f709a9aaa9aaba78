"""How fast anyone may guess one-time login codes, without letting a stranger lock a phone.

The earlier rule locked a *phone number* for 15 minutes after five wrong codes, from
wherever they came. Anyone who knew a responder's number could keep them from logging
in on a storm day with five requests every quarter of an hour. The limits below stop
guessing instead of punishing the number:

1. **One code, a few guesses.** A code is six random digits (``secrets``), lives
   ``OTP_TTL_SECONDS`` and is burnt after ``OTP_MAX_ATTEMPTS`` wrong guesses from all
   addresses together. A burnt code blocks nothing: a new one may be requested at once,
   and only the newest code of a phone counts.
2. **Per (phone, address) backoff.** Each source address (an IPv4 address, or the /64 of
   an IPv6 one: a single host holds a whole /64) may send ``OTP_ADDRESS_FREE_FAILURES``
   wrong codes for a phone without waiting; after the last of them it waits
   ``OTP_BACKOFF_BASE_SECONDS`` before its next guess for that phone, and every further
   wrong code doubles the wait, up to ``OTP_BACKOFF_MAX_SECONDS`` (:func:`backoff_seconds`).
   Other addresses are not affected: the owner, on their own phone and network,
   requests and uses a code while the stranger waits.
3. **Per phone backoff, much later.** The same schedule counts the phone's wrong codes
   from every address together, but only after ``OTP_PHONE_FREE_FAILURES`` of them; it
   bounds guessing by an attacker with many addresses. It is the one limit the owner
   shares, and it is a wait that grows, never a fixed lock (see "What is left").
4. **Forgetting.** A login clears the counter of its address and the phone's; a counter
   with no wrong code for ``OTP_FAILURE_WINDOW_SECONDS`` starts again from zero. A
   request for a code is never refused because of wrong guesses (requests have their
   own rate limits, ``THROTTLE_OTP_REQUEST_*``, and the resend interval).

Every guess is checked and counted under the row lock of the phone's newest challenge,
so parallel guesses are counted one by one (``services.otp_verify``).

**The bound.** A guess is right with probability 10^-6 whatever the attacker knows
(codes are uniform and each code is fresh). So the chance of ever logging in as someone
else is at most (wrong guesses the limits allow) x 10^-6:

- one code: at most ``OTP_MAX_ATTEMPTS`` = 5 guesses, p <= 5 x 10^-6;
- one phone, any number of addresses, over a period T: after the phone's
  ``OTP_PHONE_FREE_FAILURES`` free guesses every further one waits for the doubling
  delay, so at most ``guess_bound(T)`` guesses (:func:`guess_bound`). With the defaults
  (free 50, base 30 s, cap 3600 s) that is 79 guesses in any day, p <= 7.9 x 10^-5 per
  day and at most 2.9 % for a whole year of attack on one number at that pace (0.9 %
  if the attacker keeps to the one-an-hour cap); from one address alone (5 free), 34 a
  day. Each of those guesses also needs a live code, which only a request can make,
  and every request texts the owner.

**What is left.** An attacker with more than ``OTP_PHONE_FREE_FAILURES /
OTP_ADDRESS_FREE_FAILURES`` addresses (10 with the defaults) can push one phone into
the shared backoff, and then the owner also waits (at most ``OTP_BACKOFF_MAX_SECONDS``
between guesses). That takes a botnet aimed at one number, not one stranger, and it is
logged (``otp backoff`` warnings per phone).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings

from apps.core.client_address import parse_address

IPV6_BUCKET_PREFIX = 64


def address_key(address: str | None) -> str:
    """The counter key of a client address: the address itself for IPv4, its /64 for
    IPv6, and ``"unknown"`` when the server gave none (one shared bucket)."""
    parsed = parse_address(address or "")
    if parsed is None:
        return (address or "").strip()[:64] or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_BUCKET_PREFIX}", strict=False))
    return str(parsed)


def backoff_seconds(failures: int, free: int) -> int:
    """How long the next guess waits after the ``failures``-th wrong code of a counter
    that lets ``free`` through without waiting: nothing before the ``free``-th, then
    ``OTP_BACKOFF_BASE_SECONDS``, doubling with each further wrong code up to the cap."""
    over = failures - free
    if over < 0:
        return 0
    base = settings.OTP_BACKOFF_BASE_SECONDS
    cap = settings.OTP_BACKOFF_MAX_SECONDS
    return int(min(cap, base * 2 ** min(over, 40)))


def blocked_until(failures: int, free: int, now: datetime) -> datetime | None:
    wait = backoff_seconds(failures, free)
    return now + timedelta(seconds=wait) if wait else None


def guess_bound(seconds: float, *, free: int | None = None) -> int:
    """The most wrong codes one counter lets through in ``seconds`` (``free`` defaults to
    the per-phone allowance: the bound for any number of addresses).

    ``free`` guesses at once, then each further guess only after the doubling wait of
    the one before it; the counter never forgets within the period because the cap is
    shorter than ``OTP_FAILURE_WINDOW_SECONDS``.
    """
    if free is None:
        free = settings.OTP_PHONE_FREE_FAILURES
    guesses, elapsed = free, 0.0
    while True:
        wait = backoff_seconds(guesses, free)
        if elapsed + wait > seconds:
            return guesses
        elapsed += wait
        guesses += 1
