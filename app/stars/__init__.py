"""The monthly Governance Star and Service Star awards (docs/organisation.md)."""
