"""The compiled loops' one switch: Numba's ``njit``, cached on disk, for the few loops that walk a recording
beat by beat or sample by sample (QRS detection, morphology families).

Those loops are sequential by nature (a beat joins a family formed by the beats before it; a QRS threshold
follows the peaks accepted so far), so numpy can only run them as a Python loop of small array calls, ~40 us a
beat here. Compiled, each costs well under a microsecond a beat: the speed of the C programs this field's classic
detectors are (OSEA, sleepecg's detector).

Numba itself is imported on the first call of such a loop, not when its module is imported: the served model
imports the Detector (and so :mod:`arritmias.signal.families`) but never runs a recording's loops, and need not pay
Numba's ~0.3-0.6 s import. ``cache=True`` keeps the machine code beside the module (``__pycache__``), or in
Numba's user cache where that folder is read-only, so only the first call after an install or an edit compiles.
"""

from __future__ import annotations

import functools
import sys
import threading

_pending: dict[str, list] = {}  # module name -> its functions not yet handed to Numba
_lock = threading.Lock()  # records are read on several threads: one of them replaces a module's functions


def njit(fn):
    """``fn`` compiled by ``numba.njit(cache=True, nogil=True)`` on first use. A compiled loop may call another
    of its module: on the first call, every such function of the module is replaced in the module's namespace by
    its Numba dispatcher, which is what compiled code looks up."""
    _pending.setdefault(fn.__module__, []).append(fn)

    @functools.wraps(fn)
    def call(*args):
        return _dispatchers(fn.__module__)[fn.__name__](*args)

    call.py_func = fn  # the plain Python version, for tests that compare the two
    return call


def _dispatchers(module: str) -> dict:
    names = sys.modules[module].__dict__
    if module in _pending:
        with _lock:  # the others wait until every function of the module is a dispatcher
            pending = _pending.get(module, ())
            if pending:
                import numba

                for fn in pending:
                    names[fn.__name__] = numba.njit(cache=True, nogil=True)(fn)
            _pending.pop(module, None)  # only now: a thread that saw it pending waited for the lock
    return names
