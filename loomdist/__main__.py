"""`python -m loomdist` runs the CLI."""

from .cli import main

main()
