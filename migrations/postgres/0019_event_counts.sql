-- Events in the audit trail by type, kept with the trail by the projector,
-- so that /metrics need not count the whole trail at every scrape.
CREATE TABLE event_counts
(
    event_type TEXT   PRIMARY KEY,
    n          BIGINT NOT NULL
);
INSERT INTO event_counts (event_type, n) SELECT event_type, COUNT(*) FROM audit_trail GROUP BY event_type;
