"""``python -m tui_migrator`` runs the same entry point as the ``tui-migrator`` script."""

from tui_migrator.cli.launch import entry

# Guarded: a run's worker processes import this module again (as ``__mp_main__``).
if __name__ == "__main__":
    entry()
