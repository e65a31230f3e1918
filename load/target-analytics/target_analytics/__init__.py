"""MeltanoLabs target-postgres, extended for the analytics load of one day."""
