"""A small LRU of serialised 200 answers, of the newest generation only.

Results change about once a day, while clients poll them. An answer is keyed by
everything it depends on, and stored with the state store's (results, accounts)
generations it was read under. A write anywhere bumps a generation: the first
answer put under the newer generation empties the cache, since no request will
ask for an older one again, and an answer read under an older generation than
the cache's is not kept. So a cached answer is never served after the data
behind it changed, and the cache holds only answers that can still be served:
while events stream in and the worker writes results every few seconds, it does
not fill to its limit with dead answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class AnswerCache:
    """Answers of one generation, least recently used evicted beyond ``max_bytes``.

    ``generation`` is any value that only grows while the process runs (the
    state store's counters); a read made later never has a smaller one.
    """

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._generation: tuple[int, ...] | None = None
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable, generation: tuple[int, ...]) -> bytes | None:
        with self._lock:
            if generation != self._generation:
                return None
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: Hashable, generation: tuple[int, ...], body: bytes) -> None:
        if len(body) > self._max_bytes // 4:
            return
        with self._lock:
            if self._generation is None or generation > self._generation:
                self._entries.clear()  # every answer of an older generation is dead
                self._bytes = 0
                self._generation = generation
            elif generation < self._generation:
                return  # read before the newest write: dead on arrival
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = body
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class SharedRead(Generic[T]):
    """``await shared()`` returns ``read()``, one call shared by requests asking together.

    The answer cache is keyed by the state store's generations, read on every
    request: under load that query is most of a cached answer's cost. Here a
    caller does not read at once: the read is scheduled behind the requests
    already queued on the event loop, and those that ask before it runs join it.
    Every caller therefore gets a value read *after* it asked, exactly as fresh
    as a read of its own (a write committed before a request asks is always
    seen), while requests that arrive together cost one query.
    """

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[asyncio.Future[T]] | None = None  # of the read not yet started

    async def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._waiters is not None and self._loop is loop:
                self._waiters.append(waiter)
            else:
                self._loop, self._waiters = loop, [waiter]
                loop.call_soon(self._run, self._waiters)
        return await waiter

    def _run(self, waiters: list[asyncio.Future[T]]) -> None:
        with self._lock:
            if self._waiters is waiters:
                self._waiters = None  # from here on, a caller needs a new read
        try:
            value = self._read()
        except Exception as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
        except BaseException:
            for waiter in waiters:
                waiter.cancel()
            raise
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(value)
