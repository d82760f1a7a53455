"""Ctrl-C during training: finish the step, save, then stop."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["GracefulInterrupt"]


class GracefulInterrupt:
    """Turn the first Ctrl-C into a request that the loop honours between two steps.

    A KeyboardInterrupt raised in the middle of ``optimizer.step()`` could leave half of the
    parameters updated, and a checkpoint of that would not resume exactly. A second Ctrl-C
    interrupts at once. Only the main thread may install signal handlers; elsewhere (and
    when the handler cannot be installed) Ctrl-C keeps its usual meaning.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
