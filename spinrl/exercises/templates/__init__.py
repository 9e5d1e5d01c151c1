"""Templates the reader copies with ``spinrl exercise init``; a package only so that installs ship them."""
