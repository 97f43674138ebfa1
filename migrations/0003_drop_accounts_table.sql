-- Accounts are cold records under the host's namespace (collection
-- `accounts`, see host/src/accounts.rs), so they live in sled offline and
-- here in service mode alike. The table 0001 made for them was never used.
DROP TABLE IF EXISTS accounts;
