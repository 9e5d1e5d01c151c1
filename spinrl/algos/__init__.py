"""One file per algorithm, each a single readable function."""
