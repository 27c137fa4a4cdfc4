-- A WebAuthn ceremony lives for the minutes between the options call and
-- the finish. Kept out of the write-ahead log, its save commits without
-- waiting for a disk flush; a crash of the database (or a failover to a
-- standby) forgets the ceremonies under way, and their customers start the
-- login again, as after a ceremony that expired.
ALTER TABLE ceremonies SET UNLOGGED;
