"""The access-token cache of TokenService: verified tokens are served from it until they
expire; nothing unverified ever gets in; it stays bounded."""
from __future__ import annotations

import types

import pytest

from nexus_chat import tokens
from nexus_chat.tokens import InvalidToken, TokenService, TokenType


def service() -> TokenService:
    settings = types.SimpleNamespace(
        jwt_access_secret="a" * 32, jwt_access_ttl_s=900, jwt_refresh_secret="r" * 32, jwt_refresh_ttl_s=3600,
        jwt_verify_email_secret="v" * 32, jwt_verify_email_ttl_s=3600,
        jwt_reset_password_secret="p" * 32, jwt_reset_password_ttl_s=3600)
    return TokenService(settings)


def test_a_cached_token_is_refused_once_it_expires(monkeypatch):
    svc = service()
    token, issued = svc.issue(TokenType.ACCESS, "user-1", session_id="s1")
    assert svc.decode(TokenType.ACCESS, token) == issued
    assert svc.decode(TokenType.ACCESS, token) == issued          # now from the cache
    later = issued.exp + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    verified_again = []

    def pyjwt_refuses(kind, text):      # PyJWT reads its own clock: stand in for its answer
        verified_again.append(text)
        raise InvalidToken("Signature has expired")

    monkeypatch.setattr(svc, "_decode", pyjwt_refuses)
    with pytest.raises(InvalidToken):
        svc.decode(TokenType.ACCESS, token)
    assert verified_again == [token] and token not in svc._verified


def test_a_tampered_or_foreign_token_is_never_taken_from_the_cache():
    svc = service()
    token, _ = svc.issue(TokenType.ACCESS, "user-1", session_id="s1")
    svc.decode(TokenType.ACCESS, token)
    head, payload, signature = token.split(".")
    forged = ".".join((head, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    with pytest.raises(InvalidToken):
        svc.decode(TokenType.ACCESS, forged)
    refresh, _ = svc.issue(TokenType.REFRESH, "user-1", session_id="s1")
    with pytest.raises(InvalidToken):
        svc.decode(TokenType.ACCESS, refresh)                      # another secret and type
    with pytest.raises(InvalidToken):
        svc.decode(TokenType.REFRESH, token)                       # the cache is for access tokens


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "ACCESS_CACHE_SIZE", 8)
    svc = service()
    for i in range(20):
        token, _ = svc.issue(TokenType.ACCESS, f"user-{i}", session_id=f"s{i}")
        svc.decode(TokenType.ACCESS, token)
    assert len(svc._verified) == 8
