CREATE TABLE IF NOT EXISTS api_keys (
	id              TEXT PRIMARY KEY,
	key_hash        TEXT NOT NULL UNIQUE,
	prefix          TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	organization_id TEXT,
	user_id         TEXT,
	enabled         BOOLEAN NOT NULL DEFAULT 1,
	expires_at      TIMESTAMP,
	tier            TEXT NOT NULL DEFAULT '',
	rate_limit      TEXT,
	created_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	last_used_at    TIMESTAMP
);
CREATE INDEX IF NOT EXISTS api_keys_organization_id ON api_keys (organization_id);
