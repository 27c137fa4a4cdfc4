-- The event log, in the shape sqlite-es reads and writes.
CREATE TABLE events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

-- The global order. sqlite-es inserts by column name, so the position is
-- given by a trigger into a table of its own: SQLite has one writer at a
-- time, so position order is commit order.
CREATE TABLE event_positions
(
  position       integer PRIMARY KEY AUTOINCREMENT,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  sequence       integer NOT NULL,
  UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TRIGGER events_position AFTER INSERT ON events
BEGIN
  INSERT INTO event_positions (aggregate_type, aggregate_id, sequence)
  VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
END;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER event_positions_no_update BEFORE UPDATE ON event_positions
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER event_positions_no_delete BEFORE DELETE ON event_positions
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TABLE snapshots
(
  aggregate_type   text                                  NOT NULL,
  aggregate_id     text                                  NOT NULL,
  last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload          text                                  NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;
