"""Service activities and the monthly rule (docs/organisation.md)."""
