"""Alembic migrations; `siaga db upgrade` runs them (see bot/migrate.py)."""
