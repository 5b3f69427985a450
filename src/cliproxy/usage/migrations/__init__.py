"""Alembic's script directory for the usage ledger's schema (run by usage/ledger_migrations.py
at every start; env.py and the revisions under versions/)."""
