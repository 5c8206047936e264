"""The one base of the bundle's expected failures: the CLI turns any of them into one line on
stderr and exit status 1; anything else is a bug and keeps its traceback."""


class ExpectedError(Exception):
    """An expected failure whose message tells the user what to do."""
