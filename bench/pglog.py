"""`python -m bench pglog LOG`: where PostgreSQL's executor time went, by
statement, from a run that logged every plan with auto_explain:

    python -m bench run ... --pg-set session_preload_libraries=auto_explain \\
        --pg-set auto_explain.log_min_duration=0
    tail -c +<size before the run> /var/log/postgresql/postgresql-15-main.log > run.log
    python -m bench pglog run.log

The statement's total, count and mean (auto_explain's `duration`: the
executor's time, not parsing or planning), largest total first; a plan that
scans `--scan` (e.g. `Seq Scan on call`) is counted apart. This needs no
server restart; where PostgreSQL preloads pg_stat_statements, `python -m
bench run --statements` (bench/statements.py) gives the statements' time
with their plans and planning, without a log.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

# One log entry per line that starts with the log line prefix.
_ENTRY = re.compile(
    r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[\d+\] \S+ (?:LOG|CONTEXT|ERROR|STATEMENT):)"
)
_DURATION = re.compile(r"duration: ([\d.]+) ms")
_QUERY = re.compile(r"Query Text: (.*?)(?:\n\t[A-Z]|\Z)", re.S)


def summarise(path: Path, top: int = 25, scan: str | None = None) -> str:
    total: defaultdict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    scanned: Counter[str] = Counter()
    for entry in _ENTRY.split(path.read_text(errors="replace")):
        duration = _DURATION.search(entry.partition("\n")[0])
        if duration is None:
            continue
        query = _QUERY.search(entry)
        key = " ".join(query.group(1).split())[:120] if query else "?"
        total[key] += float(duration.group(1))
        count[key] += 1
        if scan is not None and scan in entry:
            scanned[key] += 1
    everything = sum(total.values()) or 1.0
    lines = [f"{everything:.0f} ms of executor time in {sum(count.values())} statements"]
    for key, ms in sorted(total.items(), key=lambda item: -item[1])[:top]:
        apart = f" [{scan}: {scanned[key]}]" if scanned[key] else ""
        lines.append(
            f"{ms:9.0f} ms {100 * ms / everything:5.1f}%  n={count[key]:<6d}"
            f" {ms / count[key]:7.3f} ms  {key}{apart}"
        )
    return "\n".join(lines)
