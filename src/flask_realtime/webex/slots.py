"""Request slots for the Webex client: a semaphore that serves waiters by priority, whose
size can change while it is used (the client's congestion window)."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PrioritySlots:
    """A semaphore whose waiters go in priority order (lower first), then by ticket.

    Listing a space's next page goes before the first page of another space: a scan of
    hundreds of spaces then takes about as long as its longest chain of pages, instead
    of each next page queueing behind every first page still waiting.

    :meth:`acquire` returns the waiter's ticket; a retry that passes it back goes in
    front of every waiter of its priority that came after it, so a request refused once
    keeps its place instead of going to the back of the queue.

    ``limit`` may be lowered or raised at any time (:meth:`set_limit`): a lower one
    holds new waiters back until enough slots are released, a higher one lets waiters
    in at once.
    """

    def __init__(self, size: int) -> None:
        self.limit = max(size, 1)
        self.busy = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def over(self) -> bool:
        """More slots are held than the limit allows (it was lowered since)."""
        return self.busy > self.limit

    def set_limit(self, size: int) -> None:
        self.limit = max(size, 1)
        self._wake()

    async def acquire(self, priority: int, ticket: int | None = None) -> int:
        if ticket is None:
            ticket = next(self._order)
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return ticket
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, ticket, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise
        return ticket

    def release(self) -> None:
        self.busy -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.busy < self.limit:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self.busy += 1
                future.set_result(None)
