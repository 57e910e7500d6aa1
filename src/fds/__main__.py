"""`python -m fds`: the `fds` command, also what `torchrun -m fds train …` starts on every rank."""

from fds.cli import main

main()
