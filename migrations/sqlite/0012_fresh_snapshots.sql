-- Snapshots written before this version may miss the last events of the
-- command that wrote them (a command whose events straddled a snapshot
-- boundary: cqrs-es built the snapshot up to the boundary and stored it as
-- of the last event). Snapshots are a cache of the events: all are dropped,
-- each account is read from its events until its next snapshot is written.
DELETE FROM snapshots;
