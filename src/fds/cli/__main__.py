"""`python -m fds.cli`: the same as the `fds` script."""

from fds.cli import main

main()
