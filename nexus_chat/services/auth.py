"""Accounts and sessions: register, verify, login, refresh, logout, passwords."""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any
from urllib.parse import urlencode

from .. import mail
from ..context import AppContext
from ..db import is_duplicate_key
from ..errors import ApiError, bad_request, conflict, not_found, unauthorized
from ..jsonutil import utcnow
from ..queries import sessions, users
from ..shapes import user_self
from ..tokens import Claims, InvalidToken, TokenType, token_hash

log = logging.getLogger("nexus_chat.auth")

REFRESH_INVALID = "Refresh token expired or invalid"
RESET_INVALID = "Invalid or expired reset link"


def _expiry(ctx: AppContext, kind: TokenType) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=ctx.tokens.lifetime(kind))


async def _queue_verification(ctx: AppContext, db, user: dict[str, Any]) -> None:
    token, _ = ctx.tokens.issue(TokenType.VERIFY_EMAIL, user["id"])
    link = f"{ctx.settings.server_public_url}/api/auth/verify-email?{urlencode({'token': token})}"
    await mail.queue_mail(db, user["email"], "Verify your Nexus Chat account", "verify_email",
                          full_name=user["full_name"], link=link,
                          valid_for=mail.human_duration(ctx.tokens.lifetime(TokenType.VERIFY_EMAIL)))


async def register(ctx: AppContext, *, username: str, full_name: str, email: str, password: str) -> dict:
    if await users.user_exists_with(ctx.db, username, email):
        raise conflict("Username or Email already exists")
    password_hash = await ctx.hasher.hash(password)
    user_id = str(uuid.uuid4())
    now = utcnow()
    try:
        async with ctx.db.transaction() as tx:
            await users.insert_user(tx, user_id=user_id, username=username, full_name=full_name,
                                    email=email, password_hash=password_hash, now=now)
            await _queue_verification(ctx, tx, {"id": user_id, "email": email, "full_name": full_name})
    except Exception as exc:
        if is_duplicate_key(exc):  # lost a race with a concurrent registration
            raise conflict("Username or Email already exists") from None
        raise
    ctx.wake_mail()
    return user_self(await users.user_by_id(ctx.db, user_id))


async def verify_email(ctx: AppContext, token: str) -> None:
    """Raises InvalidToken for a bad/expired/wrong-type token; verifying twice is fine."""
    claims = ctx.tokens.decode(TokenType.VERIFY_EMAIL, token)
    if await users.user_by_id(ctx.db, claims.sub) is None:
        raise InvalidToken("no such user")
    await users.mark_email_verified(ctx.db, claims.sub, utcnow())


async def _open_session(ctx: AppContext, db, user_id: str) -> dict[str, Any]:
    session_id = str(uuid.uuid4())
    refresh, _ = ctx.tokens.issue(TokenType.REFRESH, user_id, session_id=session_id)
    await sessions.insert_session(db, session_id=session_id, user_id=user_id, token_hash=token_hash(refresh),
                                  now=utcnow(), expires_at=_expiry(ctx, TokenType.REFRESH))
    access, _ = ctx.tokens.issue(TokenType.ACCESS, user_id, session_id=session_id)
    return {"accessToken": access, "refreshToken": refresh, "userId": user_id,
            "expiresIn": ctx.tokens.lifetime(TokenType.ACCESS)}


async def login(ctx: AppContext, email: str, password: str) -> dict[str, Any]:
    row = await users.credentials_by_email(ctx.db, email)
    # Always run bcrypt, so the answer takes as long whether or not the e-mail exists.
    if not await ctx.hasher.verify(password, row["password_hash"] if row else None):
        raise unauthorized("Invalid email or password")
    if row["email_verified_at"] is None:
        raise ApiError(403, "Please verify your email address first")
    return await _open_session(ctx, ctx.db, row["id"])


def verify_access(ctx: AppContext, token: str | None) -> Claims:
    """The claims of a valid access token of a session that is not revoked; else 401.
    REST and the Socket.IO handshake both ask this (no database round trip).

    Every access token this server ever issued names its session. One without ``sid``
    cannot be revoked, so it is refused: the client refreshes (its refresh token names
    the session) and carries on with a revocable token."""
    if not token:
        raise unauthorized("Authentication token missing")
    try:
        claims = ctx.tokens.decode(TokenType.ACCESS, token)
    except InvalidToken:
        raise unauthorized() from None
    if not claims.sid or ctx.revoked_sessions.contains(claims.sid):
        raise unauthorized()
    return claims


def authenticate(ctx: AppContext, token: str | None) -> Claims:
    """The access check of every authenticated REST route and of the Socket.IO handshake:
    ``verify_access``, and the account was not deleted meanwhile."""
    claims = verify_access(ctx, token)
    if ctx.revoked_users.contains(claims.sub):
        raise unauthorized()
    return claims


async def _revoked(ctx: AppContext, session_ids: list[str]) -> None:
    """After COMMIT: refuse the sessions' access tokens from now on and disconnect their
    sockets (the set's listeners)."""
    if session_ids:
        await ctx.revoked_sessions.revoke(session_ids)


async def logout(ctx: AppContext, user_id: str, session_id: str | None) -> None:
    if session_id:
        await sessions.revoke_session(ctx.db, session_id, user_id, utcnow())
        await _revoked(ctx, [session_id])


async def refresh(ctx: AppContext, refresh_token: str, user_id: str | None) -> dict[str, Any]:
    try:
        claims = ctx.tokens.decode(TokenType.REFRESH, refresh_token)
    except InvalidToken:
        raise unauthorized(REFRESH_INVALID) from None
    if not claims.sid or (user_id is not None and user_id != claims.sub):
        raise unauthorized(REFRESH_INVALID)
    now = utcnow()
    async with ctx.db.transaction() as tx:
        session = await sessions.session_for_update(tx, claims.sid)
        if (session is None or session["user_id"] != claims.sub or session["revoked_at"] is not None
                or session["expires_at"] < now):
            raise unauthorized(REFRESH_INVALID)
        if session["refresh_token_hash"] != token_hash(refresh_token):
            # A rotated-out token came back: someone kept a copy. Revoke the whole session.
            await sessions.revoke_session(tx, claims.sid, claims.sub, now)
            log.warning("refresh token reuse detected; session revoked user_id=%s session=%s",
                        claims.sub, claims.sid)
            reused = True
        else:
            reused = False
            new_refresh, _ = ctx.tokens.issue(TokenType.REFRESH, claims.sub, session_id=claims.sid)
            await sessions.rotate_session(tx, claims.sid, token_hash(new_refresh), now,
                                          _expiry(ctx, TokenType.REFRESH))
    if reused:  # raised after COMMIT so the revocation sticks
        await _revoked(ctx, [claims.sid])
        raise unauthorized(REFRESH_INVALID)
    access, _ = ctx.tokens.issue(TokenType.ACCESS, claims.sub, session_id=claims.sid)
    return {"accessToken": access, "refreshToken": new_refresh, "userId": claims.sub,
            "expiresIn": ctx.tokens.lifetime(TokenType.ACCESS)}


async def me(ctx: AppContext, user_id: str) -> dict[str, Any]:
    row = await users.user_by_id(ctx.db, user_id)
    if row is None:
        raise not_found("User not found")
    return user_self(row)


async def forgot_password(ctx: AppContext, email: str) -> None:
    row = await users.credentials_by_email(ctx.db, email)
    if row is None:
        return
    user = await users.user_by_id(ctx.db, row["id"])
    token, _ = ctx.tokens.issue(TokenType.RESET_PASSWORD, row["id"])
    link = f"{ctx.settings.server_frontend_url}/reset-password?{urlencode({'token': token})}"
    await mail.queue_mail(ctx.db, row["email"], "Reset your Nexus Chat password", "reset_password",
                          full_name=user["full_name"], link=link,
                          valid_for=mail.human_duration(ctx.tokens.lifetime(TokenType.RESET_PASSWORD)))
    ctx.wake_mail()


async def resend_verification(ctx: AppContext, email: str) -> None:
    row = await users.credentials_by_email(ctx.db, email)
    if row is None or row["email_verified_at"] is not None:
        return
    user = await users.user_by_id(ctx.db, row["id"])
    await _queue_verification(ctx, ctx.db, user)
    ctx.wake_mail()


async def reset_password(ctx: AppContext, token: str, new_password: str) -> None:
    try:
        claims = ctx.tokens.decode(TokenType.RESET_PASSWORD, token)
    except InvalidToken:
        raise unauthorized(RESET_INVALID) from None
    password_hash = await ctx.hasher.hash(new_password)
    now = utcnow()
    async with ctx.db.transaction() as tx:
        if await users.user_by_id_for_update(tx, claims.sub) is None:
            raise unauthorized(RESET_INVALID)
        expires = dt.datetime.fromtimestamp(claims.exp, dt.timezone.utc).replace(tzinfo=None)
        if not await sessions.mark_token_used(tx, claims.jti, claims.sub, expires):
            raise unauthorized(RESET_INVALID)
        await users.set_password_hash(tx, claims.sub, password_hash, now)
        revoked = await sessions.active_session_ids_for_update(tx, claims.sub)
        await sessions.revoke_user_sessions(tx, claims.sub, now)
    await _revoked(ctx, revoked)


async def change_password(ctx: AppContext, user_id: str, old_password: str, new_password: str) -> None:
    current = await users.password_hash_of(ctx.db, user_id)
    if current is None:
        raise not_found("User not found")
    if not await ctx.hasher.verify(old_password, current):
        raise bad_request("Old password does not match")
    password_hash = await ctx.hasher.hash(new_password)
    now = utcnow()
    async with ctx.db.transaction() as tx:
        await users.set_password_hash(tx, user_id, password_hash, now)
        revoked = await sessions.active_session_ids_for_update(tx, user_id)
        await sessions.revoke_user_sessions(tx, user_id, now)
    # Every session, this one included (the answer says "Please login again"): the other
    # devices' sockets are disconnected at once, and so are this session's.
    await _revoked(ctx, revoked)


async def check_password_for_deletion(ctx: AppContext, user_id: str, password: str) -> None:
    current = await users.password_hash_of(ctx.db, user_id)
    if current is None:
        raise not_found("User not found")
    if not await ctx.hasher.verify(password, current):
        raise bad_request("Invalid password. Account deletion aborted.")
