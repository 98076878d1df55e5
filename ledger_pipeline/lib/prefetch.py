"""Read a slow iterator in a thread ahead of its caller, and start several of them ahead of their turn.

A sync alternates between waiting for the rail's answers and logging what it has (hashing,
diffing, a DuckDB insert). `Prefetch` reads the next answers while the current ones are logged;
`read_ahead` starts the next keys' work (the next tenants' reads) while the current key's is
consumed. A reader thread is the only one driving its iterator, so a client that is not
thread-safe may be driven by it as long as the caller leaves that client alone until the
iteration has ended: the reader is joined when it ends, and an abandoned one is told to stop
before its next item (the caller does not wait for a request already under way).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")

_WAIT_SECONDS = 0.2  # how often a blocked side looks whether the other has gone; not a delay on any item
_END = object()


class _Failed:
    """The source raised: carried across to the caller, which raises it there with its traceback."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """`source`'s items in order, up to `depth` of them read ahead by a thread that starts at once.

    Errors of the source are raised in the caller's thread at the item where they happened.
    `close()` (or leaving the `with` block) stops an unfinished reader before its next item and
    closes the source in the reader's thread. `deepen` lets the reader run further ahead: a sync
    started before its turn reads a little, and reads freely once its turn comes, so the rail
    answers the sync being logged first.
    """

    def __init__(self, source: Iterable[T], depth: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._depth = depth
        self._items: deque[object] = deque()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self._reader = threading.Thread(target=self._read, args=(source,), name="prefetch", daemon=True)
        self._reader.start()

    def deepen(self, depth: int) -> None:
        """Let the reader hold up to `depth` items (never fewer than it may already hold)."""
        with self._changed:
            self._depth = max(self._depth, depth)
            self._changed.notify_all()

    def _hand_over(self, item: object) -> bool:
        with self._changed:
            while len(self._items) >= self._depth:
                if self._stop.is_set():
                    return False
                self._changed.wait(_WAIT_SECONDS)
            if self._stop.is_set():
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def _read(self, source: Iterable[T]) -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not self._hand_over(item) or self._stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller, who decides
            self._hand_over(_Failed(exc))
            return
        finally:
            close = getattr(iterator, "close", None)  # a generator's cleanup runs in the thread that drove it
            if close is not None:
                close()
        self._hand_over(_END)

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        with self._changed:
            while not self._items:
                if not self._reader.is_alive():
                    self._finished = True
                    raise RuntimeError("the prefetch reader stopped without handing over an end")
                self._changed.wait(_WAIT_SECONDS)
            item = self._items.popleft()
            self._changed.notify_all()
        if item is _END or isinstance(item, _Failed):
            self._finished = True
            self._reader.join()
            if isinstance(item, _Failed):
                raise item.error
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        with self._changed:
            self._stop.set()
            self._changed.notify_all()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_ahead(
    keys: Iterable[K], start: Callable[[K], T], close: Callable[[T], None], ahead: int
) -> Iterator[tuple[K, Callable[[], T]]]:
    """Each key with a thunk giving what `start(key)` returned, `start` having run up to `ahead` keys early.

    The thunk raises what `start` raised, so a failure is met at its own key, in order. The caller
    owns each value it takes; values started but never taken are `close`d when the iteration ends,
    however it ends.
    """
    if ahead < 0:
        raise ValueError(f"ahead must not be negative, got {ahead}")
    waiting = iter(keys)
    window: deque[tuple[K, T | None, BaseException | None]] = deque()

    def begin_next() -> None:
        for key in waiting:
            try:
                window.append((key, start(key), None))
            except Exception as exc:  # met when its key's turn comes
                window.append((key, None, exc))
            return

    try:
        for _ in range(ahead):
            begin_next()
        while True:
            begin_next()  # the one to take now, or the one `ahead` keys after it
            if not window:
                return
            key, value, error = window.popleft()

            def taken(value: T | None = value, error: BaseException | None = error) -> T:
                if error is not None:
                    raise error
                return value  # type: ignore[return-value]

            yield key, taken
    finally:
        for _, value, error in window:
            if error is None:
                close(value)  # type: ignore[arg-type]
