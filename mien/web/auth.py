"""Who may use the web app, and protection of its state-changing requests.

- With a server token (MIEN_TOKEN / --token-file): a request carries either
  `Authorization: Bearer <token>` (API clients) or the session cookie the
  login form sets (HttpOnly, SameSite=Strict). The cookie holds an HMAC of
  the token, never the token: changing the token ends every session.
- Without a token the app is open, as gRPC is (the server binds loopback by
  default).
- CSRF: every POST authenticated by cookie (or unauthenticated, when auth is
  off) must carry the header X-CSRF-Token equal to the `mien_csrf` cookie
  (double submit; a page of another site can neither read the cookie nor set
  the header without a CORS preflight we never grant), and an Origin header,
  when sent, must be this server's. Bearer calls carry no ambient credential
  and need neither. With auth off, a JSON POST (Content-Type
  application/json, which another site cannot send without a preflight) from
  no other origin passes too, so scripts can use the API.
- Host check: on loopback, the Host header must name loopback, so a DNS
  rebinding page cannot talk to the app through the victim's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

SESSION_COOKIE = "mien_session"
CSRF_COOKIE = "mien_csrf"
CSRF_HEADER = "X-CSRF-Token"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class WebAuth:
    def __init__(self, token: str | None, host: str):
        from mien.server.app import checked_token

        self.token = checked_token(token)  # a blank token would let a blank login in
        self._session = hmac.new(token.encode(), b"mien-web-session-v1", hashlib.sha256).hexdigest() if token else ""
        self._loopback = host in _LOOPBACK_HOSTS

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def session_value(self) -> str:
        return self._session

    def check_login(self, given: str) -> bool:
        return self.enabled and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def host_ok(self, host_header: str | None) -> bool:
        if not self._loopback:
            return True
        host = (host_header or "").rsplit(":", 1)[0] if not (host_header or "").startswith("[") \
            else (host_header or "").split("]")[0] + "]"
        return host in _LOOPBACK_HOSTS

    def authenticate(self, headers) -> str | None:
        """How the request is authenticated: "bearer", "cookie", "open" (auth off), or None."""
        if not self.enabled:
            return "open"
        auth = headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):].encode()
            return "bearer" if hmac.compare_digest(given, self.token.encode()) else None
        session = cookies(headers).get(SESSION_COOKIE)
        if session and hmac.compare_digest(session.encode(), self._session.encode()):
            return "cookie"
        return None

    @staticmethod
    def csrf_ok(headers, how: str, server_origin_hosts) -> bool:
        if how == "bearer":
            return True
        origin = headers.get("Origin")
        if origin and origin.split("://", 1)[-1] not in server_origin_hosts:
            return False
        sent = headers.get(CSRF_HEADER) or ""
        cookie = cookies(headers).get(CSRF_COOKIE) or ""
        if sent and cookie and hmac.compare_digest(sent.encode(), cookie.encode()):
            return True
        # Auth off: API clients (curl, scripts) hold no cookie. A JSON body is
        # enough there: a page of another site can only send one after a CORS
        # preflight, which this server never grants, and forms cannot send it.
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return how == "open" and content_type == "application/json"


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def cookies(headers) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("Cookie") or "")
    except Exception:  # noqa: BLE001 - a malformed cookie header counts as none
        return {}
    return {k: m.value for k, m in jar.items()}


def cookie_header(name: str, value: str, *, http_only: bool, max_age: int | None = None,
                  secure: bool = False) -> str:
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)
