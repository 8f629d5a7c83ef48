"""`python -m deepyard` runs the CLI."""

from deepyard.cli import main

main()
