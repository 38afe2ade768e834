"""ticket search: one full-text document per ticket, kept in step by triggers, backfilled

Each ticket's searchable text, in five parts: its subject, its requester ("name email"), its
description, its public messages and its internal notes (staff only: a customer's search
leaves that part out). Not in the ORM metadata; every object's name contains
"ticket_search", which schema comparison (migrations/env.py) leaves alone.
- PostgreSQL: the table ticket_search_docs with two stored generated tsvectors (public_tsv
  without the notes, all_tsv with them), each GIN-indexed, filled by plpgsql triggers.
- SQLite: the FTS5 table ticket_search_fts (rowid = ticket id), filled by triggers.
Triggers: a new ticket adds its document; a change of subject, description or requester
rewrites those parts; a new message is appended to its part (cheap); a message changed, moved
to another ticket or deleted rebuilds both tickets' message parts; a renamed user rewrites the
requester part of their tickets. A later migration that rebuilds tickets, messages or users
with batch_alter_table on SQLite drops these triggers with the old table: recreate them
(create_sqlite_triggers below).

Revision ID: 0023_ticket_search
Revises: 0022_merge_links
Create Date: 2026-12-06 08:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = "0023_ticket_search"
down_revision = "0022_merge_links"
branch_labels = None
depends_on = None

PG_PUBLIC = (
    "setweight(to_tsvector('english', subject), 'A') || "
    "setweight(to_tsvector('english', requester), 'B') || "
    "setweight(to_tsvector('english', description), 'C') || "
    "setweight(to_tsvector('english', messages), 'D')"
)


def _messages_of(ticket: str, internal: bool, aggregate: str) -> str:
    flag = "" if internal else "NOT "
    return (
        f"coalesce((SELECT {aggregate} FROM messages m "
        f"WHERE m.ticket_id = {ticket} AND {flag}m.internal), '')"
    )


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        upgrade_postgresql()
    elif dialect == "sqlite":
        upgrade_sqlite()


def upgrade_postgresql():
    agg = "string_agg(m.body, E'\\n' ORDER BY m.id)"
    op.execute(
        "CREATE TABLE ticket_search_docs ("
        "ticket_id integer PRIMARY KEY REFERENCES tickets(id) ON DELETE CASCADE, "
        "subject text NOT NULL DEFAULT '', requester text NOT NULL DEFAULT '', "
        "description text NOT NULL DEFAULT '', messages text NOT NULL DEFAULT '', "
        "notes text NOT NULL DEFAULT '', "
        f"public_tsv tsvector GENERATED ALWAYS AS ({PG_PUBLIC}) STORED, "
        f"all_tsv tsvector GENERATED ALWAYS AS ({PG_PUBLIC} || "
        "setweight(to_tsvector('english', notes), 'D')) STORED)"
    )
    requester = (
        "coalesce((SELECT u.name || ' ' || u.email FROM users u WHERE u.id = {t}.requester_id), '')"
    )
    # Existing tickets first, then the indexes (one build, not a million inserts into them).
    op.execute(
        "INSERT INTO ticket_search_docs "
        "(ticket_id, subject, requester, description, messages, notes) "
        f"SELECT t.id, t.subject, {requester.format(t='t')}, t.description, "
        f"{_messages_of('t.id', False, agg)}, {_messages_of('t.id', True, agg)} FROM tickets t"
    )
    op.execute("CREATE INDEX ix_ticket_search_public ON ticket_search_docs USING gin (public_tsv)")
    op.execute("CREATE INDEX ix_ticket_search_all ON ticket_search_docs USING gin (all_tsv)")
    op.execute(f"""
CREATE FUNCTION ticket_search_rebuild_messages(tid integer) RETURNS void LANGUAGE sql AS $$
  UPDATE ticket_search_docs SET
    messages = {_messages_of("tid", False, agg)},
    notes = {_messages_of("tid", True, agg)}
  WHERE ticket_id = tid
$$""")
    op.execute(f"""
CREATE FUNCTION ticket_search_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ticket_search_docs (ticket_id, subject, requester, description)
    VALUES (NEW.id, NEW.subject, {requester.format(t="NEW")}, NEW.description);
  ELSE
    UPDATE ticket_search_docs SET subject = NEW.subject,
      requester = {requester.format(t="NEW")}, description = NEW.description
    WHERE ticket_id = NEW.id;
  END IF;
  RETURN NULL;
END $$""")
    op.execute("""
CREATE FUNCTION ticket_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.internal THEN
      UPDATE ticket_search_docs SET notes = notes || E'\\n' || NEW.body
      WHERE ticket_id = NEW.ticket_id;
    ELSE
      UPDATE ticket_search_docs SET messages = messages || E'\\n' || NEW.body
      WHERE ticket_id = NEW.ticket_id;
    END IF;
    RETURN NULL;
  END IF;
  PERFORM ticket_search_rebuild_messages(OLD.ticket_id);
  IF TG_OP = 'UPDATE' AND NEW.ticket_id <> OLD.ticket_id THEN
    PERFORM ticket_search_rebuild_messages(NEW.ticket_id);
  END IF;
  RETURN NULL;
END $$""")
    op.execute("""
CREATE FUNCTION ticket_search_on_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ticket_search_docs SET requester = NEW.name || ' ' || NEW.email
  WHERE ticket_id IN (SELECT id FROM tickets WHERE requester_id = NEW.id);
  RETURN NULL;
END $$""")
    op.execute(
        "CREATE TRIGGER ticket_search_ticket_ai AFTER INSERT ON tickets "
        "FOR EACH ROW EXECUTE FUNCTION ticket_search_on_ticket()"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_ticket_au "
        "AFTER UPDATE OF subject, description, requester_id ON tickets FOR EACH ROW "
        "WHEN (OLD.subject IS DISTINCT FROM NEW.subject "
        "OR OLD.description IS DISTINCT FROM NEW.description "
        "OR OLD.requester_id IS DISTINCT FROM NEW.requester_id) "
        "EXECUTE FUNCTION ticket_search_on_ticket()"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_message_ai AFTER INSERT ON messages "
        "FOR EACH ROW EXECUTE FUNCTION ticket_search_on_message()"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_message_aud "
        "AFTER UPDATE OF ticket_id, body, internal OR DELETE ON messages "
        "FOR EACH ROW EXECUTE FUNCTION ticket_search_on_message()"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_user_au AFTER UPDATE OF name, email ON users "
        "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name "
        "OR OLD.email IS DISTINCT FROM NEW.email) "
        "EXECUTE FUNCTION ticket_search_on_user()"
    )


SQLITE_AGG = "group_concat(m.body, char(10))"
SQLITE_REQUESTER = (
    "coalesce((SELECT u.name || ' ' || u.email FROM users u WHERE u.id = {t}.requester_id), '')"
)


def upgrade_sqlite():
    op.execute(
        "CREATE VIRTUAL TABLE ticket_search_fts USING fts5("
        "subject, requester, description, messages, notes, tokenize='porter unicode61')"
    )
    op.execute(
        "INSERT INTO ticket_search_fts"
        "(rowid, subject, requester, description, messages, notes) "
        f"SELECT t.id, t.subject, {SQLITE_REQUESTER.format(t='t')}, t.description, "
        f"{_messages_of('t.id', False, SQLITE_AGG)}, {_messages_of('t.id', True, SQLITE_AGG)} "
        "FROM tickets t"
    )
    create_sqlite_triggers()


def create_sqlite_triggers():
    requester = SQLITE_REQUESTER.format(t="new")
    rebuild = (
        "UPDATE ticket_search_fts SET messages = {public}, notes = {internal} "
        "WHERE rowid = {t}.ticket_id; "
    )

    def rebuild_of(t: str) -> str:
        return rebuild.format(
            t=t,
            public=_messages_of(f"{t}.ticket_id", False, SQLITE_AGG),
            internal=_messages_of(f"{t}.ticket_id", True, SQLITE_AGG),
        )

    statements = [
        "CREATE TRIGGER ticket_search_ticket_ai AFTER INSERT ON tickets BEGIN "
        "INSERT INTO ticket_search_fts(rowid, subject, requester, description, messages, notes) "
        f"VALUES (new.id, new.subject, {requester}, new.description, '', ''); END",
        "CREATE TRIGGER ticket_search_ticket_au "
        "AFTER UPDATE OF subject, description, requester_id ON tickets BEGIN "
        f"UPDATE ticket_search_fts SET subject = new.subject, requester = {requester}, "
        "description = new.description WHERE rowid = new.id; END",
        "CREATE TRIGGER ticket_search_ticket_ad AFTER DELETE ON tickets BEGIN "
        "DELETE FROM ticket_search_fts WHERE rowid = old.id; END",
        "CREATE TRIGGER ticket_search_message_ai AFTER INSERT ON messages BEGIN "
        "UPDATE ticket_search_fts SET "
        "messages = CASE WHEN new.internal THEN messages ELSE messages || char(10) || new.body END, "
        "notes = CASE WHEN new.internal THEN notes || char(10) || new.body ELSE notes END "
        "WHERE rowid = new.ticket_id; END",
        "CREATE TRIGGER ticket_search_message_au "
        "AFTER UPDATE OF ticket_id, body, internal ON messages BEGIN "
        f"{rebuild_of('old')}{rebuild_of('new')}END",
        "CREATE TRIGGER ticket_search_message_ad AFTER DELETE ON messages BEGIN "
        f"{rebuild_of('old')}END",
        "CREATE TRIGGER ticket_search_user_au AFTER UPDATE OF name, email ON users BEGIN "
        "UPDATE ticket_search_fts SET requester = new.name || ' ' || new.email "
        "WHERE rowid IN (SELECT id FROM tickets WHERE requester_id = new.id); END",
    ]
    for statement in statements:
        op.execute(statement)


SQLITE_TRIGGERS = (
    "ticket_search_ticket_ai",
    "ticket_search_ticket_au",
    "ticket_search_ticket_ad",
    "ticket_search_message_ai",
    "ticket_search_message_au",
    "ticket_search_message_ad",
    "ticket_search_user_au",
)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ticket_search_user_au ON users")
        op.execute("DROP TRIGGER IF EXISTS ticket_search_message_aud ON messages")
        op.execute("DROP TRIGGER IF EXISTS ticket_search_message_ai ON messages")
        op.execute("DROP TRIGGER IF EXISTS ticket_search_ticket_au ON tickets")
        op.execute("DROP TRIGGER IF EXISTS ticket_search_ticket_ai ON tickets")
        op.execute("DROP FUNCTION IF EXISTS ticket_search_on_user()")
        op.execute("DROP FUNCTION IF EXISTS ticket_search_on_message()")
        op.execute("DROP FUNCTION IF EXISTS ticket_search_on_ticket()")
        op.execute("DROP FUNCTION IF EXISTS ticket_search_rebuild_messages(integer)")
        op.execute("DROP TABLE IF EXISTS ticket_search_docs")
    elif dialect == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS ticket_search_fts")
