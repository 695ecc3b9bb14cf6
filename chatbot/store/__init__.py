"""What users tell the bot, kept in a database: the exchanges it answered, their feedback,
and conversation sessions.

SQLAlchemy 2 Core over any database it speaks; an SQLite file by default, PostgreSQL in
production (``CHATBOT_DATABASE_URL``). The schema is made and upgraded by Alembic migrations
(``chatbot/store/migrations``), applied by :func:`chatbot.store.database.open_database`.
"""
