"""Everything that lives in the database: engines and transactions, the tool's own tables, the
key ring, the audit trail, operators, migration records, the schema mapping and how mapped
columns store their tokens."""
