-- Contract §9: people, organizations, memberships and console sessions.
CREATE TABLE IF NOT EXISTS users (
	id            UUID PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE, -- stored lower-cased: unique whatever the case
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS organizations (
	id         UUID PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
	organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role            TEXT NOT NULL CHECK (role IN ('owner', 'member')),
	created_at      TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user_id ON memberships (user_id);
CREATE TABLE IF NOT EXISTS sessions (
	id                     UUID PRIMARY KEY,
	token_hash             TEXT NOT NULL UNIQUE,
	user_id                UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	active_organization_id UUID REFERENCES organizations (id) ON DELETE SET NULL,
	created_at             TIMESTAMPTZ NOT NULL,
	expires_at             TIMESTAMPTZ NOT NULL,
	last_seen_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
