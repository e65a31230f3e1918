"""What the project knows of a Postgres source: log-based names and checks, types that cannot travel as themselves."""
