"""Open311 GeoReport v2 for third-party civic apps, under /open311/v2/
(docs/open311.md)."""
