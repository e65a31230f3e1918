"""Foundations every part reads: errors, settings, files, dates, names, the data store, connections."""
