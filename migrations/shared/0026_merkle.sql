-- The audit trail as a Merkle tree (RFC 9162, section 2.1): each row's
-- leaf hash, and the hashes of the tree's complete subtrees at every fourth
-- level (4, 8, 12, ...; the levels between are computed from the stored
-- level below them when a proof needs them). Both follow the trail and are
-- rebuilt with it. Rows written before this migration get their leaf hash
-- from the projector's next batch.
ALTER TABLE audit_trail ADD COLUMN leaf_hash TEXT;

CREATE TABLE merkle_nodes
(
    level INTEGER NOT NULL,
    idx   BIGINT  NOT NULL,
    hash  TEXT    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints of the tree (C2SP tlog-checkpoint in a signed note):
-- statements handed to auditors and published, so they survive a rebuild
-- (the rebuilt tree is the same tree). `timestamp_reply` is the RFC 3161
-- time-stamp reply over the note, base64, when a time-stamp authority is
-- configured.
CREATE TABLE audit_checkpoints
(
    tree_size       BIGINT PRIMARY KEY,
    root_hash       TEXT   NOT NULL,
    note            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    timestamp_reply TEXT
);
