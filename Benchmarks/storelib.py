"""Reading a Muster store from the benchmarks (Python's sqlite3, read-only): its search index is
a file of its own beside it (`<store>-search`, see docs/collector.md#the-search-index)."""
import os


def attach_search_index(connection, database):
    """Attaches the store's search index as `search`, once the file exists (outside a
    transaction). Stores from before the index had a file of its own have none."""
    index = database + "-search"
    attached = {row[1] for row in connection.execute("PRAGMA database_list")}
    if "search" not in attached and os.path.exists(index):
        connection.execute("ATTACH DATABASE ? AS search", (f"file:{index}?mode=ro",))


def search_indexed_through(connection):
    """The highest logs.id the search index covers: its own file's state when attached, else
    the store's meta row (the layout before that file)."""
    attached = {row[1] for row in connection.execute("PRAGMA database_list")}
    if "search" in attached:
        row = connection.execute("SELECT value FROM search.search_state WHERE key = 'indexed_through'").fetchone()
    else:
        row = connection.execute("SELECT value FROM meta WHERE key = 'search_indexed_through'").fetchone()
    return int(row[0]) if row else 0


def indexed_rows(connection, query):
    """SQL and arguments selecting the indexed rows holding every word of an FTS5 query: one
    MATCH per partition of the attached index (as the store's readers do)."""
    partitions = [n for (n,) in connection.execute("SELECT n FROM search.partitions ORDER BY n")]
    sql = " UNION ALL ".join(f"SELECT rowid FROM search.logs_fts_{n} WHERE logs_fts_{n} MATCH ?" for n in partitions)
    return sql or "SELECT NULL WHERE 0", (query,) * len(partitions)
