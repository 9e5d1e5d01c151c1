"""One exception type for mistakes a user can fix: the CLI prints it as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (a value, a path, a space an algorithm cannot handle).

    The message must name the bad value and say what would be valid. The command line prints
    ``spinrl: error: <message>`` with no traceback and exits with status 2.
    """
