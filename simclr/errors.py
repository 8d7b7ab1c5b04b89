"""The one error type for mistakes a user can make and fix."""


class PipelineError(Exception):
    """Bad params, missing or corrupt data, a wrong path.

    The message names the file, key or row and says what to do; entry points print it on one
    line and exit non-zero.
    """
