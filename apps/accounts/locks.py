"""Row locks of the accounts app (conventions, Layers): ``select_for_update`` helpers only."""

from __future__ import annotations

from apps.accounts.models import Device, OtpChallenge, OtpFailureCounter


def otp_challenge_latest_for_update(phone: str) -> OtpChallenge | None:
    """The newest challenge of ``phone``, locked: parallel guesses queue behind it."""
    return (
        OtpChallenge.objects.select_for_update()
        .filter(phone=phone)
        .order_by("-created_at", "-id")
        .first()
    )


def otp_failure_counters_for_update(phone: str, addresses: list[str]) -> list[OtpFailureCounter]:
    """The failure counters of ``phone`` for ``addresses``, locked in a fixed order
    (conventions R3); missing rows are simply absent (created on the first failure)."""
    return list(
        OtpFailureCounter.objects.select_for_update()
        .filter(phone=phone, address__in=addresses)
        .order_by("address")
    )


def device_by_token_hash_for_update(token_hash: str) -> Device | None:
    return Device.objects.select_for_update().filter(token_hash=token_hash).first()
