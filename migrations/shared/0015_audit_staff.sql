-- The staff member a trail row names: the one who acted (actor
-- `staff:<id>`), or the administrator whose token the core system's call
-- came through (actor `core_system`, metadata `staff_id`). Rows written
-- before it get theirs from the actor, as the trail's verification derives
-- it.
ALTER TABLE audit_trail ADD COLUMN staff_id TEXT;
UPDATE audit_trail SET staff_id = substr(actor, 7) WHERE actor_kind = 'staff';
