-- Memories of the memory API. Everything that could reveal the words of a
-- memory (content, metadata, dedupKey) is inside the AES-256-GCM "sealed"
-- column; dedup_token and memory_terms.token are keyed, organization-scoped
-- HMACs (the blind index).
CREATE TABLE memories (
	id              UUID PRIMARY KEY,
	organization_id TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	key_id          TEXT NOT NULL,
	sealed          BYTEA NOT NULL,
	dedup_token     BYTEA,
	term_count      INTEGER NOT NULL,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX memories_dedup ON memories (organization_id, dedup_token);
CREATE INDEX memories_org_created ON memories (organization_id, created_at DESC, id DESC);
CREATE INDEX memories_org_user_created ON memories (organization_id, user_id, created_at DESC, id DESC);
CREATE INDEX memories_key ON memories (key_id);
-- Search statistics (memories and total length per organization or user)
-- come from this index alone.
CREATE INDEX memories_org_user_len ON memories (organization_id, user_id) INCLUDE (term_count);

-- One row per distinct term of a memory. user_id and doc_len are copies from
-- memories so that search needs no join.
CREATE TABLE memory_terms (
	token     BYTEA NOT NULL,
	memory_id UUID NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
	user_id   TEXT NOT NULL,
	tf        INTEGER NOT NULL,
	doc_len   INTEGER NOT NULL,
	PRIMARY KEY (token, memory_id) INCLUDE (user_id, tf, doc_len)
);
CREATE INDEX memory_terms_memory ON memory_terms (memory_id);
