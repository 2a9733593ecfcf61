"""Request slots for the Webex client: a semaphore that serves waiters by priority."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PrioritySlots:
    """A semaphore whose waiters go in priority order (lower first), then FIFO.

    Listing a space's next page goes before the first page of another space: a scan of
    hundreds of spaces then takes about as long as its longest chain of pages, instead
    of each next page queueing behind every first page still waiting.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1
