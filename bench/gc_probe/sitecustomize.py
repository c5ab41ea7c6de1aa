"""Put on the server's PYTHONPATH by `python -m bench run --server-gc …` to
try the collector's settings without touching the app: BENCH_GC_THRESHOLD
("700,10,10" is CPython's default) and BENCH_GC_LOG=1, which prints each
gen-2 collection's pause to stderr."""

import gc
import os
import sys
import time

_threshold = os.environ.get("BENCH_GC_THRESHOLD")
if _threshold:
    gc.set_threshold(*(int(v) for v in _threshold.split(",")))

if os.environ.get("BENCH_GC_LOG") == "1":
    _started: dict[int, float] = {}

    def _log(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            pause = (time.perf_counter() - _started.get(0, time.perf_counter())) * 1000
            print(f"BENCH_GC gen2 pause_ms={pause:.1f} pid={os.getpid()}", file=sys.stderr)

    gc.callbacks.append(_log)
