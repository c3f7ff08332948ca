"""`python -m datasync_cli` runs the CLI, as the `datasync` script does."""

from .cli.app import main

main()
