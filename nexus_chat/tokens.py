"""JWTs (HS256): one secret and lifetime per token type; `type` is checked on decode."""
from __future__ import annotations

import collections
import enum
import hashlib
import time
import uuid
from dataclasses import dataclass

import jwt


class TokenType(str, enum.Enum):
    ACCESS = "access"
    REFRESH = "refresh"
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


@dataclass(frozen=True)
class Claims:
    sub: str
    type: TokenType
    jti: str
    iat: int
    exp: int
    sid: str | None = None   # the session a refresh token belongs to


class InvalidToken(Exception):
    pass


# Verified access tokens kept, by their text: a client sends the same access token with every
# request until it expires, and verifying it again (PyJWT's per-character base64 check in
# Python, the HMAC, the JSON) was about a tenth of a cheap request's CPU. Only tokens that
# verified are kept, expiry is checked on every hit, and the least recently used go first.
ACCESS_CACHE_SIZE = 4096


class TokenService:
    def __init__(self, settings) -> None:
        self._verified: collections.OrderedDict[str, Claims] = collections.OrderedDict()
        self._keys = {
            TokenType.ACCESS: (settings.jwt_access_secret, settings.jwt_access_ttl_s),
            TokenType.REFRESH: (settings.jwt_refresh_secret, settings.jwt_refresh_ttl_s),
            TokenType.VERIFY_EMAIL: (settings.jwt_verify_email_secret, settings.jwt_verify_email_ttl_s),
            TokenType.RESET_PASSWORD: (settings.jwt_reset_password_secret, settings.jwt_reset_password_ttl_s),
        }

    def lifetime(self, kind: TokenType) -> int:
        return self._keys[kind][1]

    def issue(self, kind: TokenType, subject: str, session_id: str | None = None) -> tuple[str, Claims]:
        secret, ttl = self._keys[kind]
        now = int(time.time())
        claims = Claims(sub=subject, type=kind, jti=str(uuid.uuid4()), iat=now, exp=now + ttl,
                        sid=session_id)
        payload = {"sub": claims.sub, "type": kind.value, "jti": claims.jti,
                   "iat": claims.iat, "exp": claims.exp}
        if session_id:
            payload["sid"] = session_id
        return jwt.encode(payload, secret, algorithm="HS256"), claims

    def decode(self, kind: TokenType, token: str) -> Claims:
        """Verify signature, expiry and type; raise InvalidToken otherwise."""
        if kind is TokenType.ACCESS:
            claims = self._verified.get(token)
            if claims is not None:
                if claims.exp > time.time():
                    self._verified.move_to_end(token)
                    return claims
                del self._verified[token]
            claims = self._decode(kind, token)
            self._verified[token] = claims
            if len(self._verified) > ACCESS_CACHE_SIZE:
                self._verified.popitem(last=False)
            return claims
        return self._decode(kind, token)

    def _decode(self, kind: TokenType, token: str) -> Claims:
        secret, _ = self._keys[kind]
        try:
            payload = jwt.decode(token, secret, algorithms=["HS256"],
                                 options={"require": ["sub", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if payload.get("type") != kind.value or not isinstance(payload.get("sub"), str):
            raise InvalidToken("wrong token type")
        return Claims(sub=payload["sub"], type=kind, jti=str(payload["jti"]),
                      iat=int(payload["iat"]), exp=int(payload["exp"]), sid=payload.get("sid"))


def token_hash(token: str) -> str:
    """SHA-256 hex of a refresh token (never bcrypt: it reads only the first 72 bytes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is none
    or the scheme is another one."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_value(value: object) -> str | None:
    """A token given as a plain value, with or without a leading ``Bearer `` (the Socket.IO
    CONNECT payload, ``?token=``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return bearer_token(value) or value.strip()
