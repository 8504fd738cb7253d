"""Values, tokens and keys: the typed codec, the versioned token format, the master key and the
ciphers that seal values and backup rows. Imports no database code: data keys come in through
the :class:`~tui_migrator.crypto.ciphers.DataKeySource` protocol."""
