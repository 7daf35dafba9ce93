package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Rotate re-seals, in transactions of batch rows, every memory whose key is
// not the current one, and rewrites its dedup token and search terms under
// the current key's index key. It is safe while replicas serve: each row is
// locked, re-checked and rewritten in one transaction, and updated_at is
// left alone (a rotation is not an edit). progress gets the running total.
func (s *Store) Rotate(ctx context.Context, batch int, progress func(done int)) (int, error) {
	current := s.kr.current
	done := 0
	for {
		var ids []string
		if err := s.db.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM memories WHERE key_id <> ? ORDER BY id LIMIT ?`), current, batch); err != nil {
			return done, fmt.Errorf("find memories to rotate: %w", err)
		}
		if len(ids) == 0 {
			return done, nil
		}
		n, err := s.rotateBatch(ctx, ids)
		done += n
		if err != nil {
			return done, err
		}
		if progress != nil {
			progress(done)
		}
	}
}

func (s *Store) rotateBatch(ctx context.Context, ids []string) (int, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin rotation: %w", err)
	}
	defer s.rollback(tx)
	n := 0
	for _, id := range ids {
		var r memoryRow
		err := tx.GetContext(ctx, &r, s.db.Rebind(`SELECT `+memoryColumns+` FROM memories WHERE id = ? AND key_id <> ?`+s.forUpdate()), id, s.kr.current)
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted or re-sealed by an update meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("load memory %s: %w", id, err)
		}
		_, p, err := s.decode(r)
		if err != nil {
			return 0, err
		}
		if err := s.reseal(ctx, tx, r, p, r.UpdatedAt); err != nil {
			return 0, err
		}
		n++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit rotation: %w", err)
	}
	return n, nil
}

// Count is the number of memories in the database, of every organization.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM memories`); err != nil {
		return 0, fmt.Errorf("count memories: %w", err)
	}
	return n, nil
}
