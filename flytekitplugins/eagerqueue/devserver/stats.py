"""Counting gRPC calls per method, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter


class RpcStats:
    """A thread-safe counter of calls keyed ``"<Service>/<Method>"``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, method: str) -> None:
        """Record one call of ``method``."""
        with self._lock:
            self._counts[method] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, sorted by method."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()
