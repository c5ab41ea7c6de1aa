"""Load harness of issue 7: `python -m bench run | scale` (docs/benchmarks.md)."""
