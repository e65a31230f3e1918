"""One run of a job and day: who it is, its locks, its claims, Meltano's records, the rerun commands."""
