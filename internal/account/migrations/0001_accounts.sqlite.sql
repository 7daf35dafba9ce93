-- Contract §9: people, organizations, memberships and console sessions.
CREATE TABLE IF NOT EXISTS users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE, -- stored lower-cased: unique whatever the case
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	created_at    TIMESTAMP NOT NULL,
	updated_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS organizations (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
	organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role            TEXT NOT NULL CHECK (role IN ('owner', 'member')),
	created_at      TIMESTAMP NOT NULL,
	PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user_id ON memberships (user_id);
CREATE TABLE IF NOT EXISTS sessions (
	id                     TEXT PRIMARY KEY,
	token_hash             TEXT NOT NULL UNIQUE,
	user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	active_organization_id TEXT REFERENCES organizations (id) ON DELETE SET NULL,
	created_at             TIMESTAMP NOT NULL,
	expires_at             TIMESTAMP NOT NULL,
	last_seen_at           TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
