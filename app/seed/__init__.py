"""The deterministic demo district: `python -m app seed --scale guangming`.

See docs/seed.md. Modules: `geometry` (the street and its exact tiling),
`population` (teams, members, duty, households), `names` (the invented
vocabulary), `ids` (deterministic UUIDs), `writer` (COPY over asyncpg) and
`runner` (the transaction, idempotency and refusals).
"""

from app.seed.options import SeedOptions, SeedRefused, SeedReport
from app.seed.runner import run_seed

__all__ = ["SeedOptions", "SeedRefused", "SeedReport", "run_seed"]
