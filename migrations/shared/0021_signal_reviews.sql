-- Every review of a signal, oldest first (the signal row keeps the latest):
-- a second review no longer hides the first.
CREATE TABLE signal_reviews
(
    signal_id   TEXT   NOT NULL,
    position    BIGINT NOT NULL,
    reviewed_by TEXT   NOT NULL,
    reviewed_at BIGINT NOT NULL,
    outcome     TEXT   NOT NULL,
    note        TEXT   NOT NULL,
    PRIMARY KEY (signal_id, position)
);
