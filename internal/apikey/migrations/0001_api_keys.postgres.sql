CREATE TABLE IF NOT EXISTS api_keys (
	id              UUID PRIMARY KEY,
	key_hash        TEXT NOT NULL UNIQUE,
	prefix          TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	organization_id UUID,
	user_id         TEXT,
	enabled         BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at      TIMESTAMPTZ,
	tier            TEXT NOT NULL DEFAULT '',
	rate_limit      TEXT,
	created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
	last_used_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS api_keys_organization_id ON api_keys (organization_id);
