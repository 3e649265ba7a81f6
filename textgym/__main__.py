"""``python -m textgym`` is the ``textgym`` command."""

from textgym.cli import main

main()
