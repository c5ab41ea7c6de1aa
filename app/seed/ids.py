"""Deterministic row ids.

A seeded id is an RFC 9562 version-8 ("custom") UUID: its first 74 free bits
come from uuid5(seed, table), its last 48 bits are the row's number. So the
same seed gives the same ids, ids of different tables or seeds never meet, and
a table's ids grow with its rows: the primary-key B-trees are appended to, not
split at random pages, which keeps the million-team seed fast.
"""

from __future__ import annotations

import uuid

# A fixed namespace for the seeder (uuid5 of the project's name).
SEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "seed.hulian.invalid")

_COUNTER_LIMIT = 1 << 48


class IdSpace:
    """The ids of one table of one seed: `ids[n]` is the id of row n."""

    def __init__(self, seed: int, table: str) -> None:
        digest = bytearray(uuid.uuid5(SEED_NAMESPACE, f"{seed}:{table}").bytes)
        digest[6] = 0x80 | (digest[6] & 0x0F)  # version 8
        digest[8] = 0x80 | (digest[8] & 0x3F)  # RFC 9562 variant
        text = str(uuid.UUID(bytes=bytes(digest)))
        self.prefix = text[:24]  # "xxxxxxxx-xxxx-8xxx-Vxxx-"; the last 12 digits are the counter

    def __getitem__(self, n: int) -> str:
        if not 0 <= n < _COUNTER_LIMIT:
            raise IndexError("row number out of range")
        return f"{self.prefix}{n:012x}"

    def span(self, start: int, stop: int) -> list[str]:
        """The ids of rows start … stop-1, as text (asyncpg encodes text UUIDs in C)."""
        if not 0 <= start <= stop <= _COUNTER_LIMIT:
            raise IndexError("row numbers out of range")
        prefix = self.prefix
        return [f"{prefix}{n:012x}" for n in range(start, stop)]

    def take(self, numbers: list[int]) -> list[str]:
        """The ids of the given row numbers (each checked by the caller's range)."""
        prefix = self.prefix
        return [f"{prefix}{n:012x}" for n in numbers]
