"""tui-migrator: encrypt plaintext medical records in place, with backups, rollback and an audit trail.

The package is split into a core (configuration, mapping, crypto, keys, store, audit, service)
that knows nothing of any user interface, and two thin faces over it: ``tui_migrator.cli`` and
``tui_migrator.tui``.
"""

__version__ = "0.1.0"
