"""MeltanoLabs tap-postgres, extended so each column's schema names its PostgreSQL type."""
