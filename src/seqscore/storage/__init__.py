"""Storage: the state store (SQLAlchemy: SQLite or PostgreSQL) and the event store."""
