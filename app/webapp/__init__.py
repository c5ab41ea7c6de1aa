"""The reference web app (web/, docs/web.md), served at /app/."""
