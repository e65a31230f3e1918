"""One run of a job and day at a time: its locks and their keeper, its claims, Meltano's records of it."""
