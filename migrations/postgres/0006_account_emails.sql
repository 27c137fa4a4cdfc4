-- Command-side index of registered addresses (normalised), kept by a
-- trigger in the same transaction as the event that sets the address: the
-- shared-address rule decides on it without waiting for the projector.
CREATE TABLE account_emails
(
    account_id text PRIMARY KEY,
    email      text
);
CREATE INDEX account_emails_email ON account_emails (email);

-- Each account's address as its latest AccountOpened / EmailAddressChanged set it.
INSERT INTO account_emails (account_id, email)
SELECT DISTINCT ON (aggregate_id) aggregate_id, payload -> event_type ->> 'email'
  FROM events
 WHERE aggregate_type = 'account' AND event_type IN ('AccountOpened', 'EmailAddressChanged')
 ORDER BY aggregate_id, sequence DESC;

CREATE FUNCTION events_account_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_emails (account_id, email)
    VALUES (NEW.aggregate_id, NEW.payload -> NEW.event_type ->> 'email')
    ON CONFLICT (account_id) DO UPDATE SET email = excluded.email;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_account_email AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'account' AND NEW.event_type IN ('AccountOpened', 'EmailAddressChanged'))
    EXECUTE FUNCTION events_account_email();
