"""tui-migrator: encrypt plaintext medical records in place, with backups, rollback and an audit trail.

Layers, each importing only those below it (checked by import-linter, see pyproject.toml):
``cli`` / ``tui`` / ``reader`` (faces) → ``service`` → ``engine`` / ``demo`` → ``storage`` →
``crypto`` → ``common``. Only ``tui`` imports Textual.
"""

__version__ = "0.1.0"
