-- Contract §9: requests per organization, credential, UTC day, route group
-- and outcome, added up by every gateway.
CREATE TABLE IF NOT EXISTS usage_daily (
	day             TEXT NOT NULL, -- YYYY-MM-DD, UTC
	organization_id TEXT NOT NULL,
	credential_kind TEXT NOT NULL, -- key | session
	credential_id   TEXT NOT NULL,
	route_group     TEXT NOT NULL,
	outcome         TEXT NOT NULL,
	requests        BIGINT NOT NULL,
	PRIMARY KEY (organization_id, day, credential_kind, credential_id, route_group, outcome)
);
