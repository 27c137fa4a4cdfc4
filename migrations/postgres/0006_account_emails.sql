-- Command-side index of registered addresses (normalised), per slot (1, the
-- main address; 2, seed 003/004), kept by a trigger in the same transaction
-- as the event that sets an address: the shared-address rule decides on it
-- without waiting for the projector.
CREATE TABLE account_emails
(
    account_id text     NOT NULL,
    slot       smallint NOT NULL,
    email      text,
    PRIMARY KEY (account_id, slot)
);
CREATE INDEX account_emails_email ON account_emails (email);

-- Each account's addresses as their latest AccountOpened / EmailAddressChanged set them.
INSERT INTO account_emails (account_id, slot, email)
SELECT DISTINCT ON (aggregate_id, COALESCE((payload -> event_type ->> 'slot')::smallint, 1))
       aggregate_id, COALESCE((payload -> event_type ->> 'slot')::smallint, 1), payload -> event_type ->> 'email'
  FROM events
 WHERE aggregate_type = 'account' AND event_type IN ('AccountOpened', 'EmailAddressChanged')
 ORDER BY aggregate_id, COALESCE((payload -> event_type ->> 'slot')::smallint, 1), sequence DESC;

CREATE FUNCTION events_account_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_emails (account_id, slot, email)
    VALUES (NEW.aggregate_id, COALESCE((NEW.payload -> NEW.event_type ->> 'slot')::smallint, 1), NEW.payload -> NEW.event_type ->> 'email')
    ON CONFLICT (account_id, slot) DO UPDATE SET email = excluded.email;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_account_email AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'account' AND NEW.event_type IN ('AccountOpened', 'EmailAddressChanged'))
    EXECUTE FUNCTION events_account_email();
