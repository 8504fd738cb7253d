"""Helpers the tests share: database fixtures, a throwaway PostgreSQL cluster, migration checks."""
