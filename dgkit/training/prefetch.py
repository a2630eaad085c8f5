"""Background prefetch of training batches: the next batches are read (files decoded, collated) in a thread
while the current step runs, so the step does not wait for the disk when reading is faster than a step.

A thread rather than DataLoader worker processes: on a small CPU (2 cores) it avoids the start-up cost and
memory of worker processes, and image decoding releases the interpreter lock. For in-memory data (the IDSG's
landmarks) the loop does not use it: there the thread only competes with the step's Python code for the
interpreter lock (``python benchmarks/bench_training.py --loop BASE`` compares the modes). The order of the
batches is the iterator's, so the data a step sees (and exact resume) does not change.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Prefetcher"]

_END = object()


class Prefetcher:
    """Iterate over ``source`` in a daemon thread, at most ``depth`` items ahead.

    An exception raised by ``source`` is raised again by ``next()`` in the consumer, at the position where it
    happened. ``close()`` (or leaving a ``with`` block) stops the thread; items read ahead are dropped.
    """

    def __init__(self, source: Iterator[Any], depth: int = 2):
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dgkit-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put((_END, exc))
            return
        self._put((_END, None))

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Any:
        item, exc = self._queue.get()
        if exc is not None:
            raise exc
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
