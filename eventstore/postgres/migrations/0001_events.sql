-- The event log. Metadata are columns, not a JSON blob, so reading the log
-- decodes no JSON besides the body.
--
-- position is the global order. It is (id of the writing transaction << 16)
-- + the event's index within that transaction, so it is fixed when the row
-- is written and sorts the log by transaction id. Readers only see rows of
-- transactions older than every transaction of this database still
-- running; see docs/adr/0005-postgres-gap-free-ordering.md.
CREATE TABLE events (
	position       bigint      PRIMARY KEY CHECK (position > 0),
	event_id       uuid        NOT NULL UNIQUE,
	stream_type    text        NOT NULL,
	stream_id      text        NOT NULL,
	version        bigint      NOT NULL CHECK (version >= 1),
	type           text        NOT NULL,
	schema_version integer     NOT NULL CHECK (schema_version >= 1),
	data           jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
	actor_id       text        NOT NULL,
	actor_role     text        NOT NULL,
	command_id     text        NOT NULL,
	correlation_id text        NOT NULL,
	causation_id   text        NOT NULL,
	clinic_id      text        NOT NULL,
	occurred_at    timestamptz,
	recorded_at    timestamptz NOT NULL,
	-- The expected-version check: two writers that read the same version
	-- cannot both write the next one.
	CONSTRAINT events_stream_version UNIQUE (stream_type, stream_id, version)
);

-- Idempotency look-up. Partial: events without a command id never need it.
-- Queries must repeat "command_id <> ''" to use it.
CREATE INDEX events_by_command ON events (stream_type, stream_id, command_id) WHERE command_id <> '';

-- The log is append-only; the database refuses anything else, so a stray
-- UPDATE from a console cannot rewrite clinical history.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
	FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
