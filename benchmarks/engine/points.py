"""Named points in a job's life where a fault can land, for the chaos tests (tests/test_chaos.py):
a command is killed at a point it logged, not at a moment of the clock. Off unless
`$BENCH_POINTS` is set: `say` writes a line on stderr at each point; `NAME:K` also stops the
process (SIGSTOP) the K-th time it passes point NAME, after saying so, so that a test kills it
exactly there.

The points (benchmarks/engine/tracking.py): `reserved` (a job's run created, before it trains),
`metrics` (a set of metrics logged: an epoch's, a measurement's), `ending` (its final tags and
end about to be written) and `ended` (its end written)."""

from __future__ import annotations

import collections
import os
import signal
import sys

POINTS = ("reserved", "metrics", "ending", "ended")
_passed: collections.Counter[str] = collections.Counter()


def point(name: str) -> None:
    """Pass point `name`: said and, where `$BENCH_POINTS` names it with this count, stopped."""
    setting = os.environ.get("BENCH_POINTS")
    if not setting:
        return
    _passed[name] += 1
    stop_at, _, count = setting.partition(":")
    stop = stop_at == name and count.isdigit() and int(count) == _passed[name]
    print(f"point {name} {_passed[name]}{' (stopped)' if stop else ''}", file=sys.stderr, flush=True)
    if stop:
        os.kill(os.getpid(), signal.SIGSTOP)
