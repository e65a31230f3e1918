"""Singer tap that reads one published day of the step-1 files."""
