-- The login IDs each credential stuffing signal has counted, so that a
-- spray outlasting the rules' window keeps an exact, cumulative count.
CREATE TABLE stuffing_logins
(
    signal_id TEXT NOT NULL,
    login     TEXT NOT NULL,
    PRIMARY KEY (signal_id, login)
);
