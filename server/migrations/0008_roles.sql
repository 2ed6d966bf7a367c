-- Operator teams and enterprise staff (requirement 4.1.2).
-- duties: an operator's teams, comma-separated, or an enterprise account's admin or staff.
-- organisation_id: the enterprise an enterprise account acts for.
-- Operators from before teams existed keep everything they could do, in every team, until
-- an administrator narrows them. Existing enterprise accounts administer themselves.

ALTER TABLE accounts ADD COLUMN duties TEXT NOT NULL DEFAULT '';

ALTER TABLE accounts ADD COLUMN organisation_id TEXT;

UPDATE accounts
SET duties = 'reviewer,risk,finance,legal,welfare,support,regulator_liaison,administrator'
WHERE role = 'operator';

UPDATE accounts SET duties = 'admin', organisation_id = id WHERE role = 'enterprise';

CREATE INDEX accounts_organisation ON accounts (organisation_id);
