-- Contract §10: permissions, quotas and rerolls with a grace period.
ALTER TABLE api_keys ADD COLUMN permissions TEXT NOT NULL DEFAULT 'memory:read memory:write';
ALTER TABLE api_keys ADD COLUMN quota_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_period TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_expires_at TIMESTAMPTZ;
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_previous_key_hash ON api_keys (previous_key_hash);
