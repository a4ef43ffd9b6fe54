"""The minute job: roll kline_1s up into kline_1m, then 5m, 15m, 1h and 1d, over exactly the
windows the checkpoints name, as soon as each minute is final.

TimescaleDB refreshes its continuous aggregates with ``refresh_continuous_aggregate``, which cannot
run inside a transaction; plain PostgreSQL upserts with ``kline_rollup()``, 1m in transactions of
their own (readable at once; many symbols split over two connections,
:mod:`cryptochart.ingest.split_rollup`), the higher levels in the one that marks the checkpoints
done. Each pass first claims the pending checkpoints it rolls up: the inserter never widens a
claimed checkpoint (it opens a new pending one), so what the pass read is what it marks done, and
whatever lies past the cut moves into the symbol's pending checkpoint. A crash leaves the
checkpoints claimed and the next pass rolls them up again: a crash or a race re-aggregates and
never skips.

The job runs as soon as the inserter commits a batch writing a minute's last second (LISTEN /
NOTIFY, :mod:`cryptochart.ingest.wakeup`), and at the latest every poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from cryptochart.core.backoff import Backoff
from cryptochart.core.database import Conn, connect
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import schema_flavour
from cryptochart.db.partitions import maintain
from cryptochart.ingest import wakeup
from cryptochart.ingest.minute_job_lease import lease_dsn, wait_for_lease
from cryptochart.ingest.minute_windows import (
    Pending,
    Window,
    cut_time,
    merged_ranges,
    merged_windows,
    minute_window,
)
from cryptochart.ingest.split_rollup import Helper, rollup_split

log = logging.getLogger(__name__)

UPKEEP_EVERY = 3600.0  # seconds between partition/retention upkeep runs (plain flavour)
ACTIVE = "1 minute"  # a symbol counts toward the watermark while it wrote within this


@dataclass(frozen=True)
class Level:
    name: str
    relation: str
    bucket: timedelta


@dataclass
class Plan:
    now: datetime
    cut: datetime
    pending: list[Pending]
    windows: list[Window] = field(default_factory=list)


@dataclass(frozen=True)
class RunReport:
    cut: datetime
    checkpoints: int
    windows: list[Window]


def levels(conn: Conn) -> list[Level]:
    rows = conn.execute("SELECT name, bucket FROM kline_interval ORDER BY bucket").fetchall()
    return [Level(str(n), f"kline_{n}", b) for n, b in rows if isinstance(b, timedelta)]


class MinuteJob:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.grace = timedelta(seconds=settings.aggregate_grace_seconds)
        self.helper = Helper(lease_dsn(settings.minute_job_dsn))

    def close(self) -> None:
        """Close the second connection of the plain flavour's 1m roll-up, if it was opened."""
        self.helper.close()

    def __enter__(self) -> MinuteJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_once(self, conn: Conn) -> RunReport:
        """Aggregate every final minute that has unaggregated data; return what was done."""
        conn.autocommit = True
        plan = self.plan(conn)
        self.apply(conn, plan)
        return RunReport(plan.cut, len(plan.pending), plan.windows)

    def apply(self, conn: Conn, plan: Plan) -> None:
        """Roll the plan's windows up and mark its claimed checkpoints (``conn`` in autocommit)."""
        if not plan.pending:
            return
        if schema_flavour(conn) == "timescaledb":
            self.refresh(conn, plan.windows)
            with conn.transaction():
                self.mark(conn, plan)
        else:
            finest, *higher = levels(conn)
            # 1m first, committed on its own: its candles are readable as soon as they are
            # final. A crash before the mark leaves the checkpoints claimed, and the next pass
            # rolls every level up again.
            rollup_split(
                conn, self.helper, plan.windows, lambda c, ws: self.rollup(c, ws, [finest])
            )
            with conn.transaction():
                self.rollup(conn, plan.windows, higher)
                self.mark(conn, plan)

    def run_forever(self, stop: threading.Event) -> None:
        conn: Conn | None = None
        backoff = Backoff(initial=0.2, maximum=10.0)
        last_upkeep: float | None = None  # first pass: at once, however long the host is up
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(lease_dsn(self.settings.minute_job_dsn), timeout=5)
                    if not wait_for_lease(conn, stop):
                        break
                    wakeup.listen(conn)
                report = self.run_once(conn)
                if report.windows:
                    log.info(
                        "aggregated %d windows up to %s",
                        len(report.windows),
                        report.cut.isoformat(),
                    )
                if last_upkeep is None or time.monotonic() - last_upkeep > UPKEEP_EVERY:
                    self._upkeep(conn)
                    last_upkeep = time.monotonic()
                backoff.reset()
                wakeup.wait(conn, self.settings.aggregate_poll_seconds)
            except psycopg.OperationalError as exc:
                log.error("database unavailable, retrying: %s", " ".join(str(exc).split()))
                if conn is not None:
                    conn.close()
                conn = None
                self.helper.close()
                backoff.wait(stop)
        if conn is not None:
            conn.close()
        self.helper.close()

    def plan(self, conn: Conn) -> Plan:
        """The cut, the checkpoints pending before it (claimed, in autocommit, so the inserter
        leaves them as read) and their final-minute windows."""
        row = conn.execute(
            f"""SELECT now(), now() - %s::interval,
                       (SELECT min(last) FROM (
                            SELECT max(last_open_time) AS last FROM ingest_checkpoint
                            WHERE updated_at > now() - interval '{ACTIVE}'
                            GROUP BY symbol) active)""",
            (self.settings.retention_1s,),
        ).fetchone()
        assert row is not None
        now, oldest, watermark = row
        assert isinstance(now, datetime) and isinstance(oldest, datetime)
        cut = cut_time(watermark if isinstance(watermark, datetime) else None, now, self.grace)
        pending = [
            Pending(*r)  # type: ignore[arg-type]
            for r in conn.execute(
                """SELECT id, symbol, first_open_time, last_open_time, rows
                   FROM ingest_checkpoint_claim(%s)
                   ORDER BY symbol, id""",
                (cut,),
            ).fetchall()
        ]
        windows = [w for p in pending if (w := minute_window(p, cut, oldest)) is not None]
        self._log_skipped([p for p in pending if p.first_open_time < oldest], oldest)
        return Plan(now, cut, pending, windows)

    def _log_skipped(self, old: list[Pending], oldest: datetime) -> None:
        """One line per pass that leaves 1s klines unaggregated for being past the raw
        retention (they are marked done with the rest, so each is told once)."""
        if not old:
            return
        symbols = sorted({p.symbol for p in old})
        log.warning(
            "not aggregating the 1s klines of %d checkpoints of %d symbols (%s) from %s to %s: "
            "older than CRYPTOCHART_RETENTION_1S (%s, before %s), which retention drops; raise "
            "it and run `cryptochart migrate` to keep and aggregate such history",
            len(old),
            len(symbols),
            ", ".join(symbols[:5]) + (", …" if len(symbols) > 5 else ""),
            min(p.first_open_time for p in old).isoformat(),
            min(max(p.last_open_time for p in old), oldest).isoformat(),
            self.settings.retention_1s,
            oldest.isoformat(timespec="seconds"),
        )

    def rollup(self, conn: Conn, windows: list[Window], chosen: list[Level]) -> None:
        """Plain PostgreSQL: roll the ``chosen`` levels up over the windows, finest first (one
        statement a level; a symbol's windows merged where they meet, so no second is summed
        twice)."""
        for level in chosen:
            aligned = merged_windows(w.widened(level.bucket) for w in windows)
            conn.execute(
                "SELECT kline_rollup(%s, %s, %s, %s)",
                (
                    level.name,
                    [w.symbol for w in aligned],
                    [w.start for w in aligned],
                    [w.end for w in aligned],
                ),
            )

    def refresh(self, conn: Conn, windows: list[Window]) -> None:
        """TimescaleDB: refresh every continuous aggregate over the windows' merged ranges."""
        for level in levels(conn):
            for start, end in merged_ranges(w.widened(level.bucket) for w in windows):
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
                    (level.relation, start, end),
                )

    def mark(self, conn: Conn, plan: Plan) -> None:
        """The claimed checkpoints done up to the cut; what each holds from the cut on merged
        into its symbol's pending checkpoint (``ingest_checkpoint_mark()``)."""
        conn.execute(
            "SELECT ingest_checkpoint_mark(%s, %s::bigint[])",
            (plan.cut, [p.id for p in plan.pending]),
        )

    def _upkeep(self, conn: Conn) -> None:
        if schema_flavour(conn) == "postgres":
            with conn.transaction():
                maintain(conn)
        conn.execute(
            "DELETE FROM ingest_checkpoint WHERE aggregated_at < now() - %s::interval",
            (self.settings.retention_1s,),
        )
