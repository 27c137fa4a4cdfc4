-- Command-side index of registered addresses (normalised), per slot (1, the
-- main address; 2, seed 003/004), kept by a trigger in the same transaction
-- as the event that sets an address: the shared-address rule decides on it
-- without waiting for the projector.
CREATE TABLE account_emails
(
  account_id text    NOT NULL,
  slot       integer NOT NULL,
  email      text,
  PRIMARY KEY (account_id, slot)
) STRICT;
CREATE INDEX account_emails_email ON account_emails (email);

-- Each account's addresses as their latest AccountOpened / EmailAddressChanged set them.
INSERT INTO account_emails (account_id, slot, email)
SELECT e.aggregate_id, COALESCE(json_extract(e.payload, '$.' || e.event_type || '.slot'), 1),
       json_extract(e.payload, '$.' || e.event_type || '.email')
  FROM events e
 WHERE e.aggregate_type = 'account'
   AND e.event_type IN ('AccountOpened', 'EmailAddressChanged')
   AND e.sequence = (SELECT MAX(x.sequence) FROM events x
                      WHERE x.aggregate_type = 'account' AND x.aggregate_id = e.aggregate_id
                        AND x.event_type IN ('AccountOpened', 'EmailAddressChanged')
                        AND COALESCE(json_extract(x.payload, '$.' || x.event_type || '.slot'), 1)
                          = COALESCE(json_extract(e.payload, '$.' || e.event_type || '.slot'), 1));

CREATE TRIGGER events_account_email AFTER INSERT ON events
WHEN NEW.aggregate_type = 'account' AND NEW.event_type IN ('AccountOpened', 'EmailAddressChanged')
BEGIN
  INSERT INTO account_emails (account_id, slot, email)
  VALUES (NEW.aggregate_id, COALESCE(json_extract(NEW.payload, '$.' || NEW.event_type || '.slot'), 1),
          json_extract(NEW.payload, '$.' || NEW.event_type || '.email'))
  ON CONFLICT (account_id, slot) DO UPDATE SET email = excluded.email;
END;
