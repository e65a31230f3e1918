"""The pgoutput decoder and the window fold, on the real output of a ``wal_level=logical`` throwaway cluster.

The modules live in tap-postgres-native's package (installed in the plugin's own
virtualenv) but need nothing of it, so the package folder is put on the path here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.core.errors import PipelineError
from tests.integration.cluster import Cluster, throwaway_cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "extract/tap-postgres-native"))

from tap_postgres_native import pgoutput
from tap_postgres_native.log_window import fold_window

PEEK = (
    "SELECT data FROM pg_logical_slot_peek_binary_changes('s', %s::pg_lsn, NULL, "
    "'proto_version', '1', 'publication_names', 'p')"
)


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    with throwaway_cluster({"wal_level": "logical"}) as cluster:
        yield cluster


@pytest.fixture
def conn(server: Cluster) -> Iterator[psycopg.Connection]:
    """Tables t (integer key) and pair (two-column key) published in p, a fresh slot s, dropped afterwards."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, big text)")
        conn.execute("CREATE TABLE pair (a text, b date, n numeric, PRIMARY KEY (a, b))")
        conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
        conn.execute("CREATE PUBLICATION p FOR TABLE t, pair")
        conn.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_drop_replication_slot('s')")
            conn.execute("DROP PUBLICATION p")
            conn.execute("DROP TABLE t, pair, other")


def current_lsn(conn: psycopg.Connection) -> int:
    return pgoutput.parse_lsn(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])


def peek(conn: psycopg.Connection, upto: int | None = None) -> list[bytes]:
    return [bytes(row[0]) for row in conn.execute(PEEK, (pgoutput.format_lsn(upto) if upto else None,))]


def test_every_message_kind_decodes_as_the_server_wrote_it(conn: psycopg.Connection) -> None:
    incompressible = conn.execute("SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i").fetchone()[0]
    conn.execute("INSERT INTO t VALUES (1, 'a', %s), (2, NULL, '')", (incompressible,))
    with conn.transaction():
        conn.execute("UPDATE t SET v = 'b' WHERE id = 1")  # big is TOASTed and left as it is
        conn.execute("UPDATE t SET id = 3 WHERE id = 2")  # the key changes: the old key is sent
    conn.execute("DELETE FROM t WHERE id = 1")
    conn.execute("TRUNCATE t")

    messages = [pgoutput.decode(data) for data in peek(conn)]

    kinds = [type(message).__name__ for message in messages]
    assert kinds == [
        *("Begin", "Relation", "Insert", "Insert", "Commit"),
        *("Begin", "Update", "Update", "Commit"),
        *("Begin", "Delete", "Commit"),
        *("Begin", "Relation", "Truncate", "Commit"),
    ]
    begin, relation, first, second, commit = messages[:5]
    assert (relation.schema, relation.name, relation.replica_identity) == ("public", "t", "d")
    assert [(c.name, c.type_oid, c.key) for c in relation.columns] == [
        ("id", 23, True),
        ("v", 25, False),
        ("big", 25, False),
    ]
    assert first.new == ("1", "a", incompressible)
    assert second.new == ("2", None, "")
    assert begin.final_lsn == commit.commit_lsn < commit.end_lsn
    same_key, new_key = messages[6], messages[7]
    assert same_key.old is None
    assert same_key.new == ("1", "b", pgoutput.UNCHANGED)
    assert (new_key.old_kind, new_key.old, new_key.new) == ("K", ("2", None, None), ("3", None, ""))
    assert messages[10].old_kind == "K"
    assert messages[10].old == ("1", None, None)
    assert messages[14].relids == (relation.relid,)
    lsns = [m.final_lsn for m in messages if isinstance(m, pgoutput.Begin)]
    assert lsns == sorted(lsns)


def test_malformed_bytes_are_refused_not_guessed() -> None:
    for data in (b"", b"Z", b"I\x00\x00\x00\x01X", b"B\x00"):
        with pytest.raises(pgoutput.DecodeError):
            pgoutput.decode(data)


def test_lsn_text_round_trips() -> None:
    assert pgoutput.format_lsn(pgoutput.parse_lsn("1A/16B3748")) == "1A/16B3748"
    with pytest.raises(ValueError, match="not an LSN"):
        pgoutput.parse_lsn("16B3748")


def test_a_window_folds_each_key_into_its_net_change_and_last_lsn(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO t VALUES (1, 'kept'), (2, 'gone'), (3, 'moved')")
    conn.execute("INSERT INTO pair VALUES ('x', '2024-01-02', 1)")
    start = current_lsn(conn)
    conn.execute("INSERT INTO t VALUES (4, 'new')")
    conn.execute("UPDATE t SET v = 'twice' WHERE id = 1")
    conn.execute("UPDATE t SET v = 'twice, again' WHERE id = 1")
    conn.execute("DELETE FROM t WHERE id = 2")
    conn.execute("UPDATE t SET id = 5 WHERE id = 3")
    conn.execute("INSERT INTO t VALUES (6, 'short-lived')")
    conn.execute("DELETE FROM t WHERE id = 6")
    conn.execute("UPDATE pair SET n = 2")
    conn.execute("INSERT INTO other VALUES (1)")  # not published
    end = current_lsn(conn)
    conn.execute("UPDATE t SET v = 'tomorrow' WHERE id = 4")  # after the window

    changes = fold_window(peek(conn), start, end, {("public", "t"): ["id"], ("public", "pair"): ["a", "b"]})

    t = changes[("public", "t")]
    assert not t.truncated
    assert {key: change.existed for key, change in t.keys.items()} == {
        ("4",): False,
        ("1",): True,
        ("2",): True,
        ("3",): True,
        ("5",): False,
        ("6",): False,
    }
    order = list(t.keys)
    assert order == [("4",), ("1",), ("2",), ("3",), ("5",), ("6",)]
    lsns = [t.keys[key].lsn for key in order]
    assert lsns == sorted(lsns)
    assert start <= lsns[0]
    assert lsns[-1] < end
    assert t.keys[("3",)].lsn == t.keys[("5",)].lsn  # one transaction
    assert list(changes[("public", "pair")].keys) == [("x", "2024-01-02")]


def test_transactions_outside_the_window_are_left_out_and_a_truncate_marks_the_table(
    conn: psycopg.Connection,
) -> None:
    conn.execute("INSERT INTO t VALUES (1, 'yesterday')")
    start = current_lsn(conn)
    conn.execute("INSERT INTO t VALUES (2, 'before the truncate')")
    conn.execute("TRUNCATE t")
    conn.execute("INSERT INTO pair VALUES ('y', '2024-01-03', 1)")
    end = current_lsn(conn)

    changes = fold_window(peek(conn), start, end, {("public", "t"): ["id"], ("public", "pair"): ["a", "b"]})

    assert changes[("public", "t")].truncated
    assert changes[("public", "t")].keys == {}
    assert list(changes[("public", "pair")].keys) == [("y", "2024-01-03")]
    assert fold_window(peek(conn), None, start, {("public", "t"): ["id"]})[("public", "t")].keys.keys() == {("1",)}


def test_a_table_without_its_key_in_the_log_is_refused_in_one_line(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO t VALUES (1, 'a')")

    with pytest.raises(PipelineError, match=r"table public\.t: the replication log has no column nope of its key"):
        fold_window(peek(conn), None, current_lsn(conn), {("public", "t"): ["nope"]})
