"""SIGTERM and SIGHUP before the training loop has its own handler (importing, loading data, building).

They stop the command as Ctrl-C does there: a StoppedBySignal (a KeyboardInterrupt) unwinds it, every
write being atomic, and the CLI exits with 128 + the signal. An exception raised inside C code (an
extension module being imported, say) can be lost, so the signal is also kept as pending: the training
loop starts with it and stops after its first step, checkpointed, as it does for any stop signal.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager

_pending = {"signal": 0}


class StoppedBySignal(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def pending() -> int:
    """The stop signal received before the loop's handler took over (0: none)."""
    return _pending["signal"]


@contextmanager
def stopping_on_signals():
    """SIGTERM and SIGHUP stop the command for the duration (in the main thread; elsewhere, as usual)."""
    def stop(signum, frame):
        _pending["signal"] = _pending["signal"] or signum
        raise StoppedBySignal(signum)

    _pending["signal"] = 0
    try:
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig}
    except ValueError:
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _pending["signal"] = 0
