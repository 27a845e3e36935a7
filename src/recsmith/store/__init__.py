"""Event stores: SQLite embedded by default, PostgreSQL in production, behind one interface."""
