"""Alembic migrations; `siaga db upgrade` runs them (see bot/storage/migrate.py)."""
