"""Bearer keys: checked in constant time, and the owner a key stands for.

Registered contexts and traces belong to the key that made them. The owner is a short digest of
the key (never the key itself, which is never stored beside what it owns nor logged). A server with
no keys (loopback only) has one owner, ``local``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from .errors import Unauthorized

LOCAL_OWNER = "local"


class Keys:
    """The server's keys. ``owner(authorization)`` is the owner of a request or ``Unauthorized``."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._digests = [hashlib.sha256(k.encode("utf-8")).digest() for k in keys]

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def owner(self, authorization: str | None) -> str:
        if not self._digests:
            return LOCAL_OWNER
        if not authorization:
            raise Unauthorized(
                "this server needs an API key: send the header 'Authorization: Bearer <key>' "
                "(OpenAI clients: api_key=...)",
                code="missing_api_key",
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        digest = hashlib.sha256(token.strip().encode("utf-8")).digest()
        # Compare digests of equal length, against every key, so timing tells nothing about either.
        found = None
        for known in self._digests:
            if hmac.compare_digest(digest, known):
                found = known
        if found is None:
            raise Unauthorized("the API key was not accepted")
        return "key-" + found.hex()[:16]

    def owner_of_headers(self, headers: Mapping[str, str] | None) -> str:
        return self.owner((headers or {}).get("authorization"))
