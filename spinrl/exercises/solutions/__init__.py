"""Reference solutions, checked by the same checkers as the reader's files (``--solution``)."""
