"""`python -m tagger`: the command line, for launchers that run a module (`torchrun -m tagger train`)."""

from tagger.cli import main

main()
