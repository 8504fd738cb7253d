"""Textual stylesheets (.tcss), shipped inside the package as tui_migrator.styles."""
