"""Foundations every part reads: errors, settings, files, dates, names, the store, connections, runs' identity."""
