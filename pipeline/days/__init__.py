"""The day-folder contract of step 1: where a day's files live, how a job publishes them, how step 2 reads them."""
