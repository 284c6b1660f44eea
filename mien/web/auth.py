"""Who may use the web app, and protection of its state-changing requests.

- With a server token (MIEN_TOKEN / --token-file): a request carries either
  `Authorization: Bearer <token>` (API clients) or the session cookie the
  login form sets. The cookie holds an HMAC of the token, never the token:
  changing the token ends every session.
- Without a token the app is open, as gRPC is (the server binds loopback by
  default).
- Cookies are `__Host-` cookies (Secure, Path=/, no Domain: only this host
  can set or overwrite them), HttpOnly and SameSite=Strict. Browsers keep
  Secure cookies on https and on loopback http; a server on another address
  without TLS gets the plain names without Secure (its tokens cross the network
  in clear anyway, which `mien serve` warns about).
- CSRF: every POST authenticated by cookie (or unauthenticated, when auth is
  off) must carry the header X-CSRF-Token equal to the CSRF cookie. That cookie
  is HttpOnly too: the app's page gets its value in a <meta> element, so no
  script of another origin, a page on another port of this host included, can
  read it, and no other origin can send the header without a CORS preflight
  this server never grants. An Origin header, when sent, must be this
  server's. Bearer calls carry no ambient credential and need neither. With
  auth off, a JSON POST (Content-Type application/json, which another site
  cannot send without a preflight) from no other origin passes too, so scripts
  can use the API.
- Login guesses are throttled globally (LoginThrottle): parallel connections
  share one budget, so they cannot multiply the rate.
- Host check: on loopback, the Host header must name loopback, so a DNS
  rebinding page cannot talk to the app through the victim's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from http.cookies import SimpleCookie

CSRF_HEADER = "X-CSRF-Token"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_CSRF_VALUE = re.compile(r"[A-Za-z0-9_-]{32}")


class LoginThrottle:
    """A token bucket shared by every connection: `burst` guesses at once, then `per_second`.

    A guess beyond the budget is refused (429) before the token is even
    compared, so parallel guessing gains nothing over sequential.
    """

    def __init__(self, per_second: float = 2.0, burst: int = 5):
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a guess may be checked now (and spends it), else the seconds until one may."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.per_second


class WebAuth:
    def __init__(self, token: str | None, host: str, *, secure_cookies: bool):
        from mien.server.app import checked_token

        self.token = checked_token(token)  # a blank token would let a blank login in
        self._session = hmac.new(token.encode(), b"mien-web-session-v1", hashlib.sha256).hexdigest() if token else ""
        self._loopback = host.strip("[]") in {h.strip("[]") for h in _LOOPBACK_HOSTS}
        self.secure_cookies = secure_cookies
        prefix = "__Host-" if secure_cookies else ""
        self.session_cookie = prefix + "mien_session"
        self.csrf_cookie = prefix + "mien_csrf"
        self.throttle = LoginThrottle()

    @property
    def enabled(self) -> bool:
        return self.token is not None

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
        session = cookies(headers).get(self.session_cookie)
        if session and hmac.compare_digest(session.encode(), self._session.encode()):
            return "cookie"
        return None

    def csrf_value(self, headers) -> str:
        """The browser's CSRF value: its cookie's when well-formed, else a new one (set it with csrf_cookie_header)."""
        value = cookies(headers).get(self.csrf_cookie) or ""
        return value if _CSRF_VALUE.fullmatch(value) else secrets.token_urlsafe(24)

    def csrf_ok(self, headers, how: str, server_origin_hosts) -> bool:
        if how == "bearer":
            return True
        origin = headers.get("Origin")
        if origin and origin.split("://", 1)[-1] not in server_origin_hosts:
            return False
        sent = headers.get(CSRF_HEADER) or ""
        cookie = cookies(headers).get(self.csrf_cookie) or ""
        if sent and cookie and hmac.compare_digest(sent.encode(), cookie.encode()):
            return True
        # Auth off: API clients (curl, scripts) hold no cookie. A JSON body is
        # enough there: a page of another site can only send one after a CORS
        # preflight, which this server never grants, and forms cannot send it.
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return how == "open" and content_type == "application/json"

    # -- Set-Cookie values ------------------------------------------------------------
    def session_cookie_header(self, *, clear: bool = False) -> str:
        return self._cookie(self.session_cookie, "" if clear else self._session, max_age=0 if clear else None)

    def csrf_cookie_header(self, value: str) -> str:
        return self._cookie(self.csrf_cookie, value)

    def _cookie(self, name: str, value: str, *, max_age: int | None = None) -> str:
        parts = [f"{name}={value}", "Path=/", "SameSite=Strict", "HttpOnly"]
        if self.secure_cookies:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)


def cookies(headers) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("Cookie") or "")
    except Exception:  # noqa: BLE001 - a malformed cookie header counts as none
        return {}
    return {k: m.value for k, m in jar.items()}
