"""History the storage would not keep is refused before it is loaded.

1s klines older than ``CRYPTOCHART_RETENTION_1S`` are dropped by retention, and the minute job
never aggregates them (refreshing an aggregate over dropped raw data would delete its candles);
candles older than ``CRYPTOCHART_RETENTION_AGGREGATES`` are dropped too. A replay or backfill of
such a range would store 1s klines that vanish and leave ``kline_1m`` silently empty, so it stops
at once with one line naming the settings to raise.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptochart.core.database import connect
from cryptochart.core.settings import Settings

DAY_MS = 86_400_000


class BeyondRetention(ValueError):
    """The range starts before what the storage keeps; the message names the settings."""


def refuse_beyond_retention(settings: Settings, start_ms: int, what: str) -> None:
    """Raise :class:`BeyondRetention` if klines from ``start_ms`` on would not be kept."""
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    days = -(-(int(datetime.now(UTC).timestamp() * 1000) - start_ms) // DAY_MS) + 1
    wanted = f"{days} days"
    with connect(settings.database_url) as conn:
        row = conn.execute(
            """SELECT %(start)s < now() - %(raw)s::interval,
                      %(start)s < now() - %(agg)s::interval,
                      %(wanted)s::interval > %(agg)s::interval""",
            {
                "start": start,
                "raw": settings.retention_1s,
                "agg": settings.retention_aggregates,
                "wanted": wanted,
            },
        ).fetchone()
    assert row is not None
    beyond_raw, beyond_aggregates, raise_aggregates = (bool(v) for v in row)
    if beyond_raw:
        why = (
            f"older than CRYPTOCHART_RETENTION_1S ({settings.retention_1s}): its 1s klines would "
            "be dropped and never aggregated"
        )
    elif beyond_aggregates:
        why = (
            f"older than CRYPTOCHART_RETENTION_AGGREGATES ({settings.retention_aggregates}): its "
            "candles would be dropped"
        )
    else:
        return
    names = ["CRYPTOCHART_RETENTION_1S"] if beyond_raw else []
    if beyond_aggregates or raise_aggregates:
        names.append("CRYPTOCHART_RETENTION_AGGREGATES")
    raise BeyondRetention(
        f"{what} starts at {start:%Y-%m-%dT%H:%M:%SZ}, {why}; "
        f"set {' and '.join(f'{n}={wanted!r}' for n in names)} for every cryptochart command "
        "and run `cryptochart migrate`, or load a newer range"
    )
