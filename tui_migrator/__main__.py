"""``python -m tui_migrator`` runs the same entry point as the ``tui-migrator`` script."""

from tui_migrator.cli.main import main

raise SystemExit(main())
