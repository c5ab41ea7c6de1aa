"""`python -m bench hot profile.txt`: where a py-spy raw profile spends the
server's busy time, by app function (inclusive) and by endpoint."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_APP_FRAME = re.compile(r"(\S+) \((app/[^:]+):\d+\)")
_IDLE_LEAVES = ("Condition.wait", "select (", "EpollSelector.select", "KqueueSelector.select")
_SKIP = (
    "app/__main__",
    "app/cli",
    "app/http/middleware",
    "app/main",
    "app/core/db",
    "app/http/deps",
)


def summarise(path: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    entry: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith(_IDLE_LEAVES) or "threading.py" in frames[-1]:
            idle += count
            continue
        busy += count
        seen: set[str] = set()
        first = "framework (uvicorn, starlette, sqlalchemy, asyncpg outside app code)"
        found = False
        for frame in frames:
            m = _APP_FRAME.search(frame)
            if not m:
                continue
            name = f"{m.group(1)} ({m.group(2)})"
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
            if not found and not m.group(2).startswith(_SKIP):
                first, found = name, True
        entry[first] += count
    out = [f"busy samples: {busy} (idle thread samples left out: {idle})", "", "by entry point:"]
    out += [f"  {c / busy:6.1%}  {name}" for name, c in entry.most_common(top)]
    out += ["", "app functions, inclusive:"]
    out += [f"  {c / busy:6.1%}  {name}" for name, c in inclusive.most_common(top)]
    return "\n".join(out)
