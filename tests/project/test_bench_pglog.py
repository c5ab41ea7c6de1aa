"""`python -m bench pglog` (bench/pglog.py) adds up auto_explain's plans in a
PostgreSQL log by statement."""

from __future__ import annotations

from pathlib import Path

from bench import pglog

_LOG = """\
2026-12-03 09:08:53.302 UTC [19110] postgres@db LOG:  duration: 0.500 ms  plan:
\tQuery Text: SELECT a
\t  FROM t
\tSeq Scan on call c  (cost=0.00..10.40 rows=40 width=88)
2026-12-03 09:08:53.303 UTC [19110] postgres@db LOG:  checkpoint starting: time
2026-12-03 09:08:53.304 UTC [19111] postgres@db LOG:  duration: 1.500 ms  plan:
\tQuery Text: SELECT a FROM t
\tIndex Scan using pk_call on call c  (cost=0.14..8.16 rows=1 width=16)
2026-12-03 09:08:53.305 UTC [19111] postgres@db LOG:  duration: 3.000 ms  plan:
\tQuery Text: UPDATE u SET x = 1
\tUpdate on u  (cost=0.00..1.00 rows=1 width=6)
"""


def test_statements_are_added_up_largest_first(tmp_path: Path) -> None:
    log = tmp_path / "pg.log"
    log.write_text(_LOG)
    lines = pglog.summarise(log, scan="Seq Scan on call").splitlines()
    assert lines[0] == "5 ms of executor time in 3 statements"
    assert "UPDATE u SET x = 1" in lines[1]
    assert "60.0%" in lines[1]
    assert "n=1 " in lines[1]
    # The same statement however it was laid out, and its scans counted apart.
    assert "SELECT a FROM t" in lines[2]
    assert "n=2 " in lines[2]
    assert "1.000 ms" in lines[2]
    assert lines[2].endswith("[Seq Scan on call: 1]")
    assert len(lines) == 3
