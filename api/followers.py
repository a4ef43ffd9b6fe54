"""How many sockets follow each channel: frames are built only for channels someone follows."""

from __future__ import annotations

from collections import Counter


class Followers:
    """Follower counts per channel name."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, channel: str) -> bool:
        """One follower more; True when it is the first."""
        self._counts[channel] += 1
        return self._counts[channel] == 1

    def remove(self, channel: str) -> bool:
        """One follower less; True when it was the last."""
        self._counts[channel] -= 1
        if self._counts[channel] > 0:
            return False
        del self._counts[channel]
        return True

    def __contains__(self, channel: object) -> bool:
        return channel in self._counts
