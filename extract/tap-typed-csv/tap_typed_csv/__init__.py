"""tap-typed-csv: CSV files as Singer streams, every value typed by a declared JSON Schema.

Each configured file is one stream. The point of the tap is that a source file which
does not match its declaration fails the run (one line naming file and line) instead
of flowing downstream as text that the analytics load would choke on later.
"""
