"""The one exception the pipeline raises for bad input or a refused step.

Its message is a single line meant for a person: it names the file, table or
setting at fault and, where there is one, the command that fixes it.
"""


class PipelineError(Exception):
    """A clear, one-line failure of a pipeline step."""
