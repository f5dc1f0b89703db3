"""When a client sends a request again after a transport error, and how long it pauses first.

The server closes a kept-alive connection that was idle for ``--keep-alive`` seconds; a client
that sends on it at that moment gets a ``ReadError`` or a ``RemoteProtocolError`` ("server
disconnected") though the server is fine. Resending is the cure, where it cannot apply a write
twice (the rule of urllib3's ``Retry`` and of Stripe's client):

- a connection refused or lost before the request was sent (``ConnectError``): nothing was
  applied, whatever the method;
- a request whose method is idempotent (RFC 9110, 9.2.2), or that carries an ``Idempotency-Key``
  (``submit(..., idempotency_key=...)``): the server answers it again with the first answer.

A ``POST`` without a key that met a closed connection after it was sent may have been applied;
it is not resent, and its ``ServerUnreachable`` says so. Timeouts are not resent either: the
client's ``timeout`` bounds a call, and resending would make it several times that. Error answers
(5xx included) are answers, read as such by the caller, never resent here.

Both clients use ``Sends``; only their pause (``time.sleep``, ``asyncio.sleep``) differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from jobhandler.client.calls import Call
from jobhandler.model.errors import ServerUnreachable
from jobhandler.model.retry import RetryPolicy

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Raised before a byte of the request left: resending cannot apply it twice.
NOT_SENT = (httpx.ConnectError,)
# The connection was closed under a request that was (maybe partly) sent.
CUT_OFF = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
DEFAULT_RETRIES = 2  # three sends in all
# 50 ms, then 200 ms (then 0.8 s, 1 s, ... for more retries), each spread by 20% either way.
BACKOFF = RetryPolicy(base=0.05, factor=4.0, max_delay=1.0, jitter=0.2)


def resendable(call: Call) -> bool:
    """Whether sending ``call`` twice has the effect of sending it once."""
    keyed = any(name.lower() == "idempotency-key" for name in call.headers)
    return keyed or call.method.upper() in IDEMPOTENT_METHODS


@dataclass(slots=True)
class Sends:
    """The sends of one call: after each transport error, whether and when to send it again."""

    call: Call
    url: str
    retries: int = DEFAULT_RETRIES
    sent: int = 0
    maybe_applied: bool = False  # a send was cut off after the request left

    def failed(self, error: httpx.TransportError) -> float:
        """The pause before the next send; raises ``ServerUnreachable`` if there is none."""
        self.sent += 1
        cut_off = isinstance(error, CUT_OFF)
        self.maybe_applied = self.maybe_applied or not isinstance(error, NOT_SENT)
        may_resend = isinstance(error, NOT_SENT) or (cut_off and resendable(self.call))
        if may_resend and self.sent <= self.retries:
            return BACKOFF.delay(self.sent)
        raise ServerUnreachable(self.url, self._reason(error)) from None

    def _reason(self, error: httpx.TransportError) -> str:
        reason = str(error) or type(error).__name__
        if self.sent > 1:
            reason += f" ({self.sent} attempts)"
        if self.maybe_applied and self.call.method.upper() not in IDEMPOTENT_METHODS:
            reason += "; the request may or may not have been applied"
        return reason
