"""The project's own code, shared by its plugins and steps.

The day-folder contract between the steps, the analytics publish and the result
export. It is installed into the virtualenv of every in-repo plugin that reads or
writes the dated files, so that the writer and the readers cannot disagree.
"""
