"""Storage: the database engine and sessions, the SQLite driver, and migrations.

Everything that survives a restart lives in the one database this package
opens: SQLite embedded for a single process, PostgreSQL when several workers
share it. `db` makes engines and sessions (every session marks the update it
handles, bot/intake/handling.py), `sqlite_driver` makes SQLite fast and
safe under asyncio, and `migrate` runs Alembic for `siaga db upgrade`.
"""
