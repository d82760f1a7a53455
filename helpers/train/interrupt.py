"""Ctrl-C or SIGTERM during training: finish the step, save, then stop."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["GracefulInterrupt", "TrainingInterrupted"]

# SIGTERM is what `timeout`, SLURM and `docker stop` send before they kill: a run stopped by
# one deserves the same checkpoint as one stopped with Ctrl-C.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped between two steps on a signal; ``signum`` says which (SIGINT, SIGTERM).

    A KeyboardInterrupt, so code that catches Ctrl-C catches it too.
    """

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum


class GracefulInterrupt:
    """Turn the first Ctrl-C or SIGTERM into a request that the loop honours between two steps.

    A KeyboardInterrupt raised in the middle of ``optimizer.step()`` could leave half of the
    parameters updated, and a checkpoint of that would not resume exactly. A second signal
    interrupts at once. Only the main thread may install signal handlers; elsewhere (and
    when the handler cannot be installed) the signals keep their usual meaning. A signal
    that was ignored when training started (SIG_IGN: a job started with ``nohup`` or in the
    background of a non-interactive shell) stays ignored.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None  # the signal that asked to stop
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str:
        """'SIGINT' or 'SIGTERM': the signal that asked to stop ('' if none did)."""
        return "" if self.signum is None else signal.Signals(self.signum).name

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def __enter__(self) -> GracefulInterrupt:
        self.requested, self.signum = False, None
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # the user (or nohup, or a CI runner) asked for this one to be ignored
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python; SIG_DFL is the closest we can restore.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def stop(self, where: str, saved: str) -> TrainingInterrupted:
        """The exception that ends training: "training interrupted at WHERE by SIGNAL..."."""
        return TrainingInterrupted(
            f"training interrupted at {where} by {self.signal_name}{saved}",
            self.signum or signal.SIGINT,
        )
