"""Every write of the accounts app (conventions R1): users, memberships, tokens, OTP, devices."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group, update_last_login
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from apps.accounts import locks
from apps.accounts import otp as otp_limits
from apps.accounts.errors import AccountsErrorCode, accounts_error
from apps.accounts.models import (
    ROLE_RANK,
    STAFF_ROLES,
    Device,
    Membership,
    OtpChallenge,
    OtpFailureCounter,
    Role,
    User,
)
from apps.accounts.phones import phone_mask, phone_normalise
from apps.accounts.roles import role_group_name
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.scoping import scope_for
from apps.core.sms import send_sms
from apps.core.transactions import on_commit
from apps.regions.models import Region

logger = logging.getLogger(__name__)


# --- Users --------------------------------------------------------------------------------


@transaction.atomic
def user_sync_roles(*, user: User) -> User:
    """Make ``is_staff`` and the role groups follow the user's active memberships.

    Superusers keep ``is_staff``; groups that are not role groups are left alone, so an
    administrator may still hand out extra groups by hand.
    """
    staff_roles = set(
        Membership.objects.filter(user=user, is_active=True, role__in=STAFF_ROLES)
        .values_list("role", flat=True)
        .distinct()
    )
    role_groups = {
        group.name: group
        for group in Group.objects.filter(name__in=[role_group_name(r) for r in STAFF_ROLES])
    }
    wanted = [
        role_groups[role_group_name(r)] for r in staff_roles if role_group_name(r) in role_groups
    ]
    missing = {role_group_name(r) for r in staff_roles} - set(role_groups)
    for name in missing:  # before the first post_migrate (a bare test database, say)
        wanted.append(Group.objects.get_or_create(name=name)[0])
    user.groups.remove(*[g for g in role_groups.values() if g not in wanted])
    user.groups.add(*wanted)

    is_staff = user.is_superuser or bool(staff_roles)
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
    user._xems_scope = None  # the cached scope is stale now  # type: ignore[attr-defined]
    # and so are the role scopes of apps.accounts.permissions
    user.__dict__.pop("_xems_role_scopes", None)
    user.__dict__.pop("_xems_membership_rows", None)
    return user


@transaction.atomic
def staff_user_upsert(
    *,
    username: str,
    password: str,
    display_name: str = "",
    is_superuser: bool = False,
) -> User:
    """Create or update a password (admin/staff) user; used by ``seed_demo`` and ops."""
    user, _created = User.objects.get_or_create(username=username)
    user.display_name = display_name
    user.is_superuser = is_superuser
    user.is_staff = is_superuser or user.is_staff
    user.is_active = True
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def phone_user_upsert(*, phone: str, username: str = "", display_name: str = "") -> User:
    """Create or update a phone (OTP) user; the password stays unusable."""
    phone = phone_normalise(phone)
    user = User.objects.filter(phone=phone).first()
    if user is None:
        user = User(phone=phone, username=username or _new_citizen_username())
        user.set_unusable_password()
    elif username:
        user.username = username
    user.display_name = display_name or user.display_name
    user.is_active = True
    user.save()
    return user


def _new_citizen_username() -> str:
    # Random, not derived from the phone: usernames show up in logs and admin lists.
    return f"citizen-{secrets.token_hex(5)}"


# --- Memberships --------------------------------------------------------------------------


def membership_check_grantable(*, by: User | None, region: Region, role: str) -> None:
    """Raise unless ``by`` may grant (or revoke) ``role`` in ``region``.

    A grantor acts only inside their scope and never above their own rank there; the
    admin role is for superusers to hand out. Without this an operator could make
    themselves (or a friend) an administrator. ``by=None`` is the system (seed, shell).
    """
    if by is None or by.is_superuser:
        return
    if not scope_for(by).covers(region.path):
        raise ApplicationError(ErrorCode.OUT_OF_SCOPE, status=403, extra={"region": region.code})
    ranks = [
        ROLE_RANK[r]
        for r, path in Membership.objects.filter(user=by, is_active=True).values_list(
            "role", "region__path"
        )
        if region.path.startswith(path)
    ]
    if role == Role.ADMIN or not ranks or ROLE_RANK[role] > max(ranks):
        raise accounts_error(
            AccountsErrorCode.ROLE_NOT_GRANTABLE, status=403, role=str(role), region=region.code
        )


@transaction.atomic
def membership_grant(
    *, user: User, region: Region, role: str, by: User | None = None
) -> Membership:
    """Give ``user`` ``role`` in ``region`` (reactivating a revoked row) and sync staff/groups.

    Idempotent: granting what is already held changes nothing.
    """
    if role not in Role.values:
        raise ApplicationError(ErrorCode.INVALID, extra={"fields": {"role": [str(role)]}})
    membership_check_grantable(by=by, region=region, role=role)
    membership, created = Membership.objects.get_or_create(
        user=user, region=region, role=role, defaults={"granted_by": by}
    )
    if not created and not membership.is_active:
        membership.is_active = True
        membership.granted_by = by
        membership.save(update_fields=["is_active", "granted_by", "updated_at"])
    user_sync_roles(user=user)
    if created:
        logger.info("membership granted: user=%s role=%s region=%s", user.pk, role, region.code)
    return membership


@transaction.atomic
def membership_revoke(*, membership: Membership, by: User | None = None) -> Membership:
    """Deactivate ``membership`` (kept for history) and sync the user's staff/groups."""
    membership_check_grantable(by=by, region=membership.region, role=membership.role)
    updated = Membership.objects.filter(pk=membership.pk, is_active=True).update(
        is_active=False, updated_at=timezone.now()
    )
    membership.is_active = False
    user_sync_roles(user=membership.user)
    if updated:
        logger.info(
            "membership revoked: user=%s role=%s region=%s",
            membership.user_id,
            membership.role,
            membership.region.code,
        )
    return membership


# --- JWT tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def tokens_issue(*, user: User) -> TokenPair:
    """A fresh access/refresh pair; the refresh is recorded as outstanding (revocable)."""
    refresh = RefreshToken.for_user(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _token_invalid() -> ApplicationError:
    return ApplicationError(ErrorCode.TOKEN_INVALID, status=401)


@transaction.atomic
def tokens_refresh(*, refresh: str) -> TokenPair:
    """Rotate: blacklist ``refresh`` and issue a new pair, exactly once per token.

    simplejwt's own serializer checks the blacklist and then blacklists in two steps, so
    two parallel refreshes of one token could both succeed. Here the outstanding row is
    locked first: the second request waits, then finds the token blacklisted.
    """
    try:
        token = RefreshToken(refresh)  # signature, expiry, type and blacklist
    except TokenError:
        raise _token_invalid() from None
    # order_by(): the model orders by user (an outer join FOR UPDATE cannot lock).
    outstanding = (
        OutstandingToken.objects.select_for_update(of=("self",))
        .filter(jti=token[jwt_settings.JTI_CLAIM])
        .order_by()
        .first()
    )
    if outstanding is None:
        raise _token_invalid()
    _blacklisted, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise _token_invalid()
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None:
        raise _token_invalid()
    if not user.is_active:
        raise accounts_error(AccountsErrorCode.ACCOUNT_INACTIVE, status=403)
    return tokens_issue(user=user)


@transaction.atomic
def tokens_revoke(*, user: User, refresh: str) -> bool:
    """Blacklist one refresh token of ``user`` (logout on this device).

    Like OAuth token revocation (RFC 7009 section 2.2), a token that is already expired,
    revoked or unreadable needs no revoking and is not an error: the app retries logouts.
    Returns whether anything was revoked. A valid token of someone else is refused.
    """
    try:
        token = RefreshToken(refresh)
    except TokenError:
        return False
    if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    outstanding = OutstandingToken.objects.filter(jti=token[jwt_settings.JTI_CLAIM]).first()
    if outstanding is None:
        return False
    _blacklisted, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created


@transaction.atomic
def tokens_revoke_all(*, user: User) -> int:
    """Blacklist every outstanding, unexpired refresh token of ``user`` (logout everywhere).

    Access tokens are stateless and live on for at most ACCESS_TOKEN_LIFETIME.
    Returns how many tokens were revoked.
    """
    pending = list(
        OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now())
        .exclude(blacklistedtoken__isnull=False)
        .values_list("pk", flat=True)
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in pending], ignore_conflicts=True
    )
    logger.info("tokens revoked: user=%s count=%s", user.pk, len(pending))
    return len(pending)


# --- Phone login (OTP) --------------------------------------------------------------------


@dataclass(frozen=True)
class OtpSent:
    challenge: OtpChallenge
    expires_in: int
    resend_after: int


@dataclass(frozen=True)
class OtpLogin:
    user: User
    created: bool
    tokens: TokenPair


def _otp_hash(phone: str, code: str) -> str:
    # HMAC with the secret key: a leaked table alone does not give the codes away, and
    # binding the phone stops a hash being replayed against another number.
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"otp:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def _otp_new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(settings.OTP_LENGTH))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


def _otp_locked_error(retry_after: int) -> ApplicationError:
    return accounts_error(AccountsErrorCode.OTP_LOCKED, status=429, retry_after=retry_after)


@transaction.atomic
def otp_request(*, phone: str, ip: str | None = None) -> OtpSent:
    """Create a challenge for ``phone`` and text the code once the row has committed.

    1. Wrong guesses never refuse a request (``apps.accounts.otp``): a stranger's
       guesses must not keep the owner from getting a fresh code.
    2. Refuse a resend within OTP_RESEND_SECONDS of the last code that can still be
       used (a burnt or expired one may be replaced at once).
    3. Store only an HMAC of the code; the newest challenge supersedes older ones.
    4. Send the SMS on commit: a rolled-back request never texts a code that cannot work.
    """
    phone = phone_normalise(phone)
    now = timezone.now()
    latest = locks.otp_challenge_latest_for_update(phone)
    if latest is not None and _otp_is_live(latest, now):
        resend_at = latest.created_at + timedelta(seconds=settings.OTP_RESEND_SECONDS)
        if resend_at > now:
            raise accounts_error(
                AccountsErrorCode.OTP_RESEND_TOO_SOON,
                status=429,
                retry_after=_seconds_until(resend_at, now),
            )
    code = _otp_new_code()
    challenge = OtpChallenge.objects.create(
        phone=phone,
        code_hash=_otp_hash(phone, code),
        expires_at=now + timedelta(seconds=settings.OTP_TTL_SECONDS),
        requested_ip=ip,
        created_at=now,
    )
    minutes = max(1, settings.OTP_TTL_SECONDS // 60)
    text = gettext(
        "[Xixian Emergency Connect] Your login code is %(code)s. "
        "It expires in %(minutes)d minutes. Never share it."
    ) % {"code": code, "minutes": minutes}
    on_commit(lambda: send_sms(phone, text))
    logger.info("otp requested: phone=%s challenge=%s", phone_mask(phone), challenge.pk)
    return OtpSent(
        challenge=challenge,
        expires_in=settings.OTP_TTL_SECONDS,
        resend_after=settings.OTP_RESEND_SECONDS,
    )


def otp_verify(*, phone: str, code: str, address: str | None = None) -> OtpLogin:
    """Check ``code`` from client ``address`` against the newest challenge of ``phone``
    and log the user in, under the limits of :mod:`apps.accounts.otp`.

    The challenge row is locked for the whole check, so parallel guesses are counted one
    after another: no code takes more than OTP_MAX_ATTEMPTS wrong guesses and no counter
    lets a guess through early. A wrong guess must be *stored* and still answered with an
    error, so the failure is decided inside the transaction and raised after it commits.
    """
    phone = phone_normalise(phone)
    key = otp_limits.address_key(address)
    with transaction.atomic():
        now = timezone.now()
        # Refusals that write nothing raise straight from here; a caller who must wait
        # learns nothing else (not even whether a code is pending).
        latest = locks.otp_challenge_latest_for_update(phone)
        counters = {
            c.address: c
            for c in locks.otp_failure_counters_for_update(
                phone, [key, OtpFailureCounter.EVERY_ADDRESS]
            )
        }
        wait = _otp_wait(counters.values(), now)
        if wait:
            raise _otp_locked_error(wait)
        challenge = _otp_check_usable(latest, now)
        if hmac.compare_digest(challenge.code_hash, _otp_hash(phone, code)):
            login = _otp_login(challenge, phone, now)
            # Proof of the code: this address and the phone start afresh.
            OtpFailureCounter.objects.filter(
                phone=phone, address__in=[key, OtpFailureCounter.EVERY_ADDRESS]
            ).delete()
            return login
        failure = _otp_record_wrong_guess(challenge, counters, key, now)
    raise failure


def _otp_is_live(challenge: OtpChallenge, now: datetime) -> bool:
    return (
        challenge.consumed_at is None
        and challenge.attempts < settings.OTP_MAX_ATTEMPTS
        and challenge.expires_at > now
    )


def _otp_check_usable(challenge: OtpChallenge | None, now: datetime) -> OtpChallenge:
    if challenge is None or challenge.consumed_at is not None:
        raise accounts_error(AccountsErrorCode.OTP_NOT_PENDING)
    if challenge.attempts >= settings.OTP_MAX_ATTEMPTS:
        # Burnt by wrong guesses: guessing on must start a new challenge.
        raise accounts_error(AccountsErrorCode.OTP_NOT_PENDING)
    if challenge.expires_at <= now:
        raise accounts_error(AccountsErrorCode.OTP_EXPIRED)
    return challenge


def _otp_wait(counters: Iterable[OtpFailureCounter], now: datetime) -> int:
    """Seconds until the caller may guess again (0: now)."""
    until = [c.blocked_until for c in counters if c.blocked_until and c.blocked_until > now]
    return _seconds_until(max(until), now) if until else 0


def _otp_count_failure(
    counter: OtpFailureCounter | None, phone: str, address: str, free: int, now: datetime
) -> OtpFailureCounter:
    window = timedelta(seconds=settings.OTP_FAILURE_WINDOW_SECONDS)
    if counter is None:
        counter = OtpFailureCounter(phone=phone, address=address)
    elif counter.last_failure_at is None or now - counter.last_failure_at > window:
        counter.failures = 0  # forgotten: a new episode
    counter.failures += 1
    counter.last_failure_at = now
    counter.blocked_until = otp_limits.blocked_until(counter.failures, free, now)
    counter.save()
    return counter


def _otp_record_wrong_guess(
    challenge: OtpChallenge,
    counters: dict[str, OtpFailureCounter],
    key: str,
    now: datetime,
) -> ApplicationError:
    attempts = challenge.attempts + 1
    OtpChallenge.objects.filter(pk=challenge.pk).update(attempts=F("attempts") + 1, updated_at=now)
    mine = _otp_count_failure(
        counters.get(key), challenge.phone, key, settings.OTP_ADDRESS_FREE_FAILURES, now
    )
    every = _otp_count_failure(
        counters.get(OtpFailureCounter.EVERY_ADDRESS),
        challenge.phone,
        OtpFailureCounter.EVERY_ADDRESS,
        settings.OTP_PHONE_FREE_FAILURES,
        now,
    )
    if every.blocked_until is not None:
        logger.warning(
            "otp backoff for every address: phone=%s failures=%s",
            phone_mask(challenge.phone),
            every.failures,
        )
    elif mine.blocked_until is not None:
        logger.info(
            "otp backoff: phone=%s address=%s failures=%s",
            phone_mask(challenge.phone),
            key,
            mine.failures,
        )
    return accounts_error(
        AccountsErrorCode.OTP_INVALID,
        attempts_left=max(0, settings.OTP_MAX_ATTEMPTS - attempts),
        retry_after=_otp_wait((mine, every), now),
    )


def _otp_login(challenge: OtpChallenge, phone: str, now: datetime) -> OtpLogin:
    user = User.objects.filter(phone=phone).first()
    if user is not None and not user.is_active:
        raise accounts_error(AccountsErrorCode.ACCOUNT_INACTIVE, status=403)
    OtpChallenge.objects.filter(pk=challenge.pk).update(consumed_at=now, updated_at=now)
    created = False
    if user is None:
        try:
            with transaction.atomic():
                user = User(phone=phone, username=_new_citizen_username(), phone_verified_at=now)
                user.set_unusable_password()
                user.save()
                created = True
        except IntegrityError:  # created a moment ago by another path (admin, seed)
            user = User.objects.get(phone=phone)
    if user.phone_verified_at is None:
        user.phone_verified_at = now
        user.save(update_fields=["phone_verified_at"])
    update_last_login(None, user)
    logger.info("otp login: user=%s created=%s", user.pk, created)
    return OtpLogin(user=user, created=created, tokens=tokens_issue(user=user))


# --- Devices (push tokens) ----------------------------------------------------------------


def device_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def device_register(
    *,
    user: User,
    token: str,
    platform: str,
    app_version: str = "",
    locale: str = "",
) -> tuple[Device, bool]:
    """Register or refresh the push token of an app install; returns (device, created).

    A token identifies an install, not a person: when another user logs in on the same
    phone the token moves to them, so pushes follow whoever is signed in now.
    """
    token_hash = device_token_hash(token)
    now = timezone.now()
    values = {
        "user": user,
        "token": token,
        "platform": platform,
        "app_version": app_version,
        "locale": locale,
        "last_seen_at": now,
        "is_active": True,
    }
    device = locks.device_by_token_hash_for_update(token_hash)
    if device is None:
        try:
            with transaction.atomic():
                return Device.objects.create(token_hash=token_hash, **values), True
        except IntegrityError:  # the same install registered in parallel
            device = locks.device_by_token_hash_for_update(token_hash)
            assert device is not None  # noqa: S101 - the conflicting row exists
    if device.user_id != user.pk:
        logger.info("device %s moves from user %s to %s", device.pk, device.user_id, user.pk)
    for name, value in values.items():
        setattr(device, name, value)
    device.save(update_fields=[*values, "updated_at"])
    return device, False


@transaction.atomic
def device_deactivate(*, user: User, device_id: int) -> Device:
    """Stop pushing to one of ``user``'s devices. Someone else's device is "not found"."""
    device = Device.objects.select_for_update().filter(pk=device_id, user=user).first()
    if device is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    if device.is_active:
        device.is_active = False
        device.save(update_fields=["is_active", "updated_at"])
    return device
