"""Generating webhook posts in other processes, while this one ingests them.

The generator is pure Python: in the process that parses and stores the events it
would take turns with that work under the interpreter's lock. ``posts_in_processes``
runs ``generate.posts`` in ``processes`` worker processes, each for every
``processes``-th account (an account's stream does not depend on its companions,
so the posts are the same), and yields the posts as they come, several at a time
per hand-over. Posts of one account keep their order; the accounts interleave as
the workers go. The workers can merge posts (``merged_posts``) before handing
them over.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import time
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Final

from seqscore.demo.generate import DEFAULT_DAYS, Post, merged_posts, posts
from seqscore.demo.plans import AccountPlan
from seqscore.errors import SeqscoreError

__all__ = ["GeneratorFailed", "posts_in_processes"]

#: Posts are handed over (a pickle and a pipe write) in groups of about this many bytes.
PUT_BYTES: Final = 2 << 20
#: Hand-overs waiting at most: bounds memory when ingesting is the slower side.
QUEUE_PUTS: Final = 16
_POLL_S = 1.0

# A worker's messages: posts; ("done", worker, CPU seconds); ("failed", worker, reason).
_Message = list[Post] | tuple[str, int, float | str]


class GeneratorFailed(SeqscoreError):
    """A generator process failed or stopped before it had yielded all its posts."""


def _produce(out: multiprocessing.Queue[_Message], worker: int, plans: list[AccountPlan],
             days: int, end_day: dt.date, merge: tuple[int, int] | None) -> None:
    started = time.process_time()
    try:
        group: list[Post] = []
        size = 0
        made: Iterator[Post] = posts(plans, days=days, end_day=end_day)
        if merge is not None:
            made = merged_posts(made, max_events=merge[0], max_bytes=merge[1])
        for post in made:
            group.append(post)
            size += len(post.body)
            if size >= PUT_BYTES:
                out.put(group)
                group, size = [], 0
        if group:
            out.put(group)
    except BaseException as exc:  # the parent says why, then stops
        out.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
        raise
    out.put(("done", worker, time.process_time() - started))


def posts_in_processes(plans: Sequence[AccountPlan], *, days: int = DEFAULT_DAYS,
                       end_day: dt.date, processes: int = 1,
                       merge: tuple[int, int] | None = None,
                       busy: list[float] | None = None) -> Iterator[Post]:
    """``posts(plans, days=days, end_day=end_day)`` made in ``processes`` worker
    processes: the same posts, each account's in order, accounts interleaved.
    ``merge`` (max events, max bytes): each worker passes its posts through
    ``merged_posts`` with these limits.

    ``busy``, when given, receives each worker's CPU seconds as it finishes.
    Raises ``GeneratorFailed`` when a worker fails or dies. The workers are
    stopped when the iterator is closed early.
    """
    if processes < 1:
        raise ValueError("posts_in_processes needs at least one process")
    plans = list(plans)
    shards = [plans[i::processes] for i in range(processes) if plans[i::processes]]
    context = multiprocessing.get_context("forkserver")
    out: multiprocessing.Queue[_Message] = context.Queue(QUEUE_PUTS)
    workers: list[BaseProcess] = [
        context.Process(target=_produce, args=(out, i, shard, days, end_day, merge),
                        name=f"seqscore-demo-generator-{i}", daemon=True)
        for i, shard in enumerate(shards)]
    for worker in workers:
        worker.start()
    done: set[int] = set()
    try:
        while len(done) < len(workers):
            try:
                message = out.get(timeout=_POLL_S)
            except queue.Empty:
                if out.empty() and any(not w.is_alive() for i, w in enumerate(workers)
                                       if i not in done):
                    raise GeneratorFailed("a demo generator process stopped") from None
                continue
            if isinstance(message, list):
                yield from message
            elif message[0] == "done":
                done.add(message[1])
                if busy is not None:
                    busy.append(float(message[2]))
            else:
                raise GeneratorFailed(f"a demo generator process failed: {message[2]}")
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
        out.close()
        out.cancel_join_thread()
