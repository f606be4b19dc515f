-- The maintainers' store as rehabmap wrote it before schema 2 (rehabmap/directory.py at commit 4d8aacc):
-- tokens without expiry, Argon2id token hashes, and audit triggers for UPDATE and DELETE only.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ownership (
    service_id TEXT PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id)
);
CREATE INDEX IF NOT EXISTS ownership_by_organisation ON ownership (organisation_id);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'maintainer', 'provider')),
    organisation_id INTEGER REFERENCES organisations (id),
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((role = 'provider') = (organisation_id IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS overlay (
    service_id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    created INTEGER NOT NULL CHECK (created IN (0, 1)),
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_resource ON audit (resource_id, id);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
