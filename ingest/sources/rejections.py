"""Bad input turned into :class:`Rejected` records, the first of each kind logged."""

from __future__ import annotations

import logging
from collections import Counter

from cryptochart.core.kline import InvalidKline
from cryptochart.ingest.sources.base import Rejected


class Rejections:
    """Counts a source's rejected inputs by kind; logs one line the first time a kind is seen."""

    def __init__(self, source: str, logger: logging.Logger) -> None:
        self.source = source
        self.counts: Counter[str] = Counter()
        self._logger = logger

    def record(self, error: InvalidKline, raw: bytes) -> Rejected:
        """The dead-letter record for ``raw``, which failed with ``error``."""
        if self.counts[error.kind] == 0:
            # Once per kind: a feed gone bad would otherwise flood the log every second.
            self._logger.warning(
                "%s: rejected input (%s), further ones of this kind are only counted: %s",
                self.source,
                error.kind,
                error,
            )
        self.counts[error.kind] += 1
        return Rejected(source=self.source, kind=error.kind, detail=str(error), raw=raw)
