-- See migrations/shared/0006_account_emails.sql for the table.
CREATE TABLE account_emails
(
  account_id text PRIMARY KEY,
  email      text
) STRICT;
CREATE INDEX account_emails_email ON account_emails (email);

-- Each account's address as its latest AccountOpened / EmailAddressChanged set it.
INSERT INTO account_emails (account_id, email)
SELECT e.aggregate_id, json_extract(e.payload, '$.' || e.event_type || '.email')
  FROM events e
 WHERE e.aggregate_type = 'account'
   AND e.event_type IN ('AccountOpened', 'EmailAddressChanged')
   AND e.sequence = (SELECT MAX(x.sequence) FROM events x
                      WHERE x.aggregate_type = 'account' AND x.aggregate_id = e.aggregate_id
                        AND x.event_type IN ('AccountOpened', 'EmailAddressChanged'));

CREATE TRIGGER events_account_email AFTER INSERT ON events
WHEN NEW.aggregate_type = 'account' AND NEW.event_type IN ('AccountOpened', 'EmailAddressChanged')
BEGIN
  INSERT INTO account_emails (account_id, email)
  VALUES (NEW.aggregate_id, json_extract(NEW.payload, '$.' || NEW.event_type || '.email'))
  ON CONFLICT (account_id) DO UPDATE SET email = excluded.email;
END;
