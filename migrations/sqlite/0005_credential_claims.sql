-- Command-side index: every credential ID ever bound, to which account. It
-- is written by a trigger in the same transaction as the event that binds
-- the credential, so a second binding of one ID (to any account, or again
-- to the same one) fails the append itself: the write side guarantees what
-- the read models' keys assume. Never emptied by a rebuild: it is part of
-- the write side, not a projection.
CREATE TABLE credential_claims
(
  credential_id text PRIMARY KEY,
  account_id    text NOT NULL,
  passkey_id    text NOT NULL,
  public_key    text NOT NULL
) STRICT;

-- Bindings recorded before this index existed; where one ID was bound
-- twice, the first binding keeps it.
INSERT OR IGNORE INTO credential_claims (credential_id, account_id, passkey_id, public_key)
SELECT json_extract(e.payload, '$.' || e.event_type || '.passkey.credential_id'),
       e.aggregate_id,
       json_extract(e.payload, '$.' || e.event_type || '.passkey.passkey_id'),
       json(json_extract(e.payload, '$.' || e.event_type || '.passkey.public_key'))
  FROM events e
  JOIN event_positions p ON p.aggregate_type = e.aggregate_type AND p.aggregate_id = e.aggregate_id AND p.sequence = e.sequence
 WHERE e.aggregate_type = 'account' AND e.event_type IN ('PasskeyRegistered', 'LocalPasskeyAdded')
 ORDER BY p.position;

CREATE TRIGGER events_claim_credential AFTER INSERT ON events
WHEN NEW.aggregate_type = 'account' AND NEW.event_type IN ('PasskeyRegistered', 'LocalPasskeyAdded')
BEGIN
  INSERT INTO credential_claims (credential_id, account_id, passkey_id, public_key)
  VALUES (json_extract(NEW.payload, '$.' || NEW.event_type || '.passkey.credential_id'),
          NEW.aggregate_id,
          json_extract(NEW.payload, '$.' || NEW.event_type || '.passkey.passkey_id'),
          json(json_extract(NEW.payload, '$.' || NEW.event_type || '.passkey.public_key')));
END;

-- Events the projector could not apply: skipped, named, and reported.
CREATE TABLE projection_failures
(
  position       integer NOT NULL,
  transaction_id integer NOT NULL,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  sequence       integer NOT NULL,
  event_type     text    NOT NULL,
  error          text    NOT NULL,
  failed_at      integer NOT NULL,
  PRIMARY KEY (transaction_id, position)
) STRICT;
