"""What every Kafka client of the pipeline shares: how fast it finds a returning broker.

librdkafka backs reconnects off exponentially up to ``reconnect.backoff.max.ms`` (10 s by default,
plus up to 50 % jitter), so after an outage of a few tens of seconds a client may wait 15 s more
before it even tries the broker that is back. Capped at 1 s, a client is connected again about a
second after the broker listens; the same cap bounds the pause between retried requests.
"""

from __future__ import annotations

from typing import Any

# Spread into every Consumer, Producer and AdminClient configuration: ``{**RECONNECT, ...}``.
RECONNECT: dict[str, Any] = {
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1_000,
    "retry.backoff.ms": 100,
    "retry.backoff.max.ms": 1_000,
    # A broker that accepts no connection (host down, not refused) is given up on after 5 s.
    "socket.connection.setup.timeout.ms": 5_000,
}
