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
);

-- Bindings recorded before this index existed; where one ID was bound
-- twice, the first binding keeps it.
INSERT INTO credential_claims (credential_id, account_id, passkey_id, public_key)
SELECT payload -> event_type -> 'passkey' ->> 'credential_id',
       aggregate_id,
       payload -> event_type -> 'passkey' ->> 'passkey_id',
       (payload -> event_type -> 'passkey' -> 'public_key')::text
  FROM events
 WHERE aggregate_type = 'account' AND event_type IN ('PasskeyRegistered', 'LocalPasskeyAdded')
 ORDER BY transaction_id, position
ON CONFLICT (credential_id) DO NOTHING;

CREATE FUNCTION events_claim_credential() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credential_claims (credential_id, account_id, passkey_id, public_key)
    VALUES (NEW.payload -> NEW.event_type -> 'passkey' ->> 'credential_id',
            NEW.aggregate_id,
            NEW.payload -> NEW.event_type -> 'passkey' ->> 'passkey_id',
            (NEW.payload -> NEW.event_type -> 'passkey' -> 'public_key')::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_claim_credential AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'account' AND NEW.event_type IN ('PasskeyRegistered', 'LocalPasskeyAdded'))
    EXECUTE FUNCTION events_claim_credential();

-- Events the projector could not apply: skipped, named, and reported.
CREATE TABLE projection_failures
(
    position       bigint NOT NULL,
    transaction_id bigint NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    event_type     text   NOT NULL,
    error          text   NOT NULL,
    failed_at      bigint NOT NULL,
    PRIMARY KEY (transaction_id, position)
);
