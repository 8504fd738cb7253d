"""The use cases both faces call, each checked against the operator's role and audited.
Knows nothing of the CLI, the TUI or the read API.

``facade.MigratorService`` is the one entry point; each of its methods hands the work to the
module of its use case, which works on a ``session.Session`` (never on the facade, so none of
them imports it):

- ``opening``: connect, first-use set-up, the master-key check
- ``access``: roles, authorization and the words of every refusal; operators
- ``inspection``: migrations, failed records, reports, the audit trail, data keys (read-only)
- ``planning`` and ``preflight``: plan, estimate, and the checks start enforces
- ``lifecycle``: start, run, join, resume; ``control``: cancel, pause, continue
- ``undo``: rollback and purging backups; ``demo_admin``: the demo database
- ``health``, ``report`` and ``views``: the response shapes the faces render
"""
