"""What the project knows of a Postgres source: log-based extraction's names and checks, types that cannot travel as themselves."""
