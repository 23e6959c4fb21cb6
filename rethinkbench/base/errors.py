"""The errors rethinkbench raises on purpose; each message names the bad value and what is allowed."""


class RethinkbenchError(Exception):
    """Base class: anything the harness refuses on purpose."""


class UsageError(RethinkbenchError, ValueError):
    """An unknown name, an out-of-range value, an option that cannot apply."""


class DataError(RethinkbenchError):
    """Data that is missing, malformed or cannot be reached."""


class TrainingDiverged(RethinkbenchError):
    """The loss became NaN or infinite; the run is not cached."""
