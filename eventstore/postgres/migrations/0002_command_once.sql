-- A command is stored at most once per stream, and the database enforces
-- it: the first event of each append that carries a command id is marked,
-- and a unique index over the marked events refuses a second append of the
-- same command to the same stream.
--
-- The index replaces events_by_command, which held every event with a
-- command id; this one holds one entry per command. An append no longer
-- looks the command up before inserting: when it is a repeat, the insert
-- fails on this index and the store then answers with the first append's
-- result. See docs/adr/0005-postgres-gap-free-ordering.md, and
-- docs/operations.md for running it (it locks and rewrites the table).
ALTER TABLE events ADD COLUMN first_of_command boolean NOT NULL DEFAULT false;

-- Mark the first event of every command already stored. The log is
-- append-only; this one-time marking is the exception, inside the
-- migration's transaction.
ALTER TABLE events DISABLE TRIGGER events_no_update;
UPDATE events e SET first_of_command = true
FROM (SELECT stream_type, stream_id, MIN(version) AS version FROM events
	WHERE command_id <> '' GROUP BY stream_type, stream_id, command_id) AS f
WHERE e.stream_type = f.stream_type AND e.stream_id = f.stream_id AND e.version = f.version;
ALTER TABLE events ENABLE TRIGGER events_no_update;

-- No default from here on: a build from before this migration that is
-- still running (it inserts without the column) fails loudly instead of
-- storing commands a retry could not find.
ALTER TABLE events ALTER COLUMN first_of_command DROP DEFAULT;

DROP INDEX events_by_command;
CREATE UNIQUE INDEX events_command_once ON events (stream_type, stream_id, command_id)
	WHERE command_id <> '' AND first_of_command;
