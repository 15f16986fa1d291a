"""Named SQL queries, one function each, parameters always bound.

Each takes an Executor (the Database, or a Transaction from ``db.transaction()``).
"""
