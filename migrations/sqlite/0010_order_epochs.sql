-- SQLite's global order is its position alone (one writer, positions in
-- commit order, kept by a file copy); the checkpoint gets the epoch column
-- PostgreSQL uses, always 0 here.
ALTER TABLE projector_checkpoints ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
