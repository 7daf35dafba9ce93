package azenauth

import "context"

// CheckStore reports whether the handler's key store is migrated (it
// migrates it first if that has not happened yet) and answers within ctx:
// azen_ready's key-store check. It changes nothing else.
func (h *Handler) CheckStore(ctx context.Context) error {
	if err := h.rt.stores.prepare(ctx); err != nil {
		return err
	}
	return h.rt.stores.db.Ping(ctx)
}
