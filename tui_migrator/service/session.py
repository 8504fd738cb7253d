"""One operator's open connection to one database: what every use case works with.

The use-case modules take a :class:`Session` rather than the facade, so none of them imports
the facade and the facade can import them all without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from tui_migrator import demo
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.engine import log_files
from tui_migrator.engine.retry import RetryPolicy
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.audit_anchor import AuditAnchor
from tui_migrator.storage.keyring import KeyRing
from tui_migrator.storage.mapping import (
    BUILTIN_SOURCE,
    ResolvedMapping,
    load_mapping_file,
    parse_mapping,
    resolve_mapping,
)


@dataclass
class Session:
    settings: Settings
    engine: Engine
    user: str
    master_key: MasterKey
    keyring: KeyRing
    audit: AuditTrail
    # None: the engine's default retries (tests set a faster policy).
    retry_policy: RetryPolicy | None = None
    _mapping: ResolvedMapping | None = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: Settings, engine: Engine, master_key: MasterKey, *, user: str) -> Session:
        return cls(
            settings=settings,
            engine=engine,
            user=user,
            master_key=master_key,
            keyring=KeyRing(engine, master_key),
            audit=AuditTrail(
                engine, master_key, AuditAnchor(log_files.audit_anchor_path(settings), master_key)
            ),
        )

    def role_key(self) -> bytes:
        """The key of the proofs that authenticate tm_operators' rows (storage/operators.py)."""
        return self.master_key.derive(Purpose.OPERATOR_ROLES)

    def value_cipher(self) -> ValueCipher:
        """The cipher for sealing and opening values (the engine and the read API use it)."""
        return ValueCipher(self.keyring, self.master_key, actor=self.user)

    def mapping(self) -> ResolvedMapping:
        """The schema mapping checked against the live database (cached for this session)."""
        if self._mapping is None:
            path = self.settings.schema_path
            if path is not None:
                parsed, source = load_mapping_file(Path(path)), str(path)
            else:
                parsed, source = (
                    parse_mapping({"tables": demo.DEMO_PROFILE}, source=BUILTIN_SOURCE),
                    BUILTIN_SOURCE,
                )
            self._mapping = resolve_mapping(parsed, self.engine, source=source)
        return self._mapping

    def forget_database_state(self) -> None:
        """After the database was rebuilt: its keys and tables are new, so nothing cached holds."""
        self.keyring = KeyRing(self.engine, self.master_key)
        self._mapping = None
