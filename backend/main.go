// Command azen-backend is the Azen memory service that stands behind the
// gateway (contract §8). It is stateless: any number of replicas serve from
// one database.
//
//	azen-backend                 serve the API on AZEN_BACKEND_ADDR
//	azen-backend rotate-keys     re-encrypt every memory to the first key
//	azen-backend version         print the version and commit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/logline"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/version"
)

func main() {
	ctx, hurry := drainSignals()
	if err := run(ctx, hurry, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "azen-backend:", logline.OneLine(err))
		os.Exit(1)
	}
}

const usage = `usage:
  azen-backend                          serve the memory API on AZEN_BACKEND_ADDR
  azen-backend rotate-keys [--batch N]  re-encrypt every memory to the first key of AZEN_ENCRYPTION_KEYS
  azen-backend version                  print the version and commit

Variables, routes, logs and key rotation: docs/backend.md in the azen-gateway sources.`

// drainSignals turns SIGINT and SIGTERM into the drain's two steps: ctx is
// done at the first signal (start draining), hurry is closed at the second
// (end the drain delay at once; in-flight requests still finish).
func drainSignals() (ctx context.Context, hurry <-chan struct{}) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan struct{})
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(second)
	}()
	return ctx, second
}

// run is the whole program: serve until ctx is done, then drain (hurried
// when hurry closes); or run a command.
func run(ctx context.Context, hurry <-chan struct{}, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "rotate-keys":
			return runRotate(ctx, args[1:], getenv, stdout)
		case "version", "--version", "-v":
			fmt.Fprintln(stdout, version.String("azen-backend"))
			return nil
		case "help", "-h", "--help":
			fmt.Fprintln(stdout, usage)
			return nil
		default:
			return fmt.Errorf("unknown command %q\n%s", args[0], usage)
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	ccfg, err := loadConsoleConfig(getenv)
	if err != nil {
		return err
	}
	return serve(ctx, hurry, cfg, ccfg, stdout)
}

// openStore connects (waiting up to 15 s for the database to come up) and
// applies migrations under the lock.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (*Store, *sqldb.DB, error) {
	kr, err := newKeyring(cfg.EncryptionKeys)
	if err != nil {
		return nil, nil, fmt.Errorf("AZEN_ENCRYPTION_KEYS: %v", err)
	}
	db, err := sqldb.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("AZEN_DATABASE_URL: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = db.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			db.Close()
			return nil, nil, fmt.Errorf("AZEN_DATABASE_URL: database unreachable: %v", err)
		}
		logger.Warn("database not reachable yet, retrying", "error", err.Error())
		time.Sleep(500 * time.Millisecond)
	}
	store := NewStore(db, kr)
	if err := store.Migrate(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("AZEN_DATABASE_URL: %v", err)
	}
	return store, db, nil
}

// serve runs the HTTP server until ctx is done, then drains: it stops taking
// new connections, lets in-flight requests finish, and returns nil.
func serve(ctx context.Context, hurry <-chan struct{}, cfg config, ccfg consoleConfig, stdout io.Writer) error {
	logger := logline.New(stdout, "azen-backend")
	// go-redis's own lines (the console's Redis failing) join this log.
	redisLog := logline.New(stdout, "redis")
	redisconn.SetLogger(func(ctx context.Context, msg string) { redisLog.WarnContext(ctx, msg) })
	signer, err := contract.NewSigner(cfg.GatewaySecret)
	if err != nil {
		return fmt.Errorf("AZEN_GATEWAY_SECRET: %v", err)
	}
	store, db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	cons, err := openConsole(ctx, db, ccfg, signer, logger)
	if err != nil {
		return err
	}
	defer cons.Close()

	handler := newServer(store, signer, logger)
	handler.mountConsole(cons)
	conns := newConnTracker()
	srv := &http.Server{
		ConnState:         conns.track,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("AZEN_BACKEND_ADDR: listen on %s: %v", cfg.Addr, err)
	}
	ln := &onceCloseListener{Listener: tcp}
	logger.Info("listening", "addr", ln.Addr().String(), "database", db.Kind, "encryption_key", cfg.EncryptionKeys[0].ID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// The drain sequence: keep serving, but fail /readyz so that the
	// gateways' health checks take this replica out of rotation; only then
	// close the listener and idle connections. A second signal (hurry)
	// skips the rest of the wait.
	handler.draining.Store(true)
	logger.Info("draining: /readyz now fails; serving until the delay is over", "delay", cfg.DrainDelay.String())
	select {
	case <-time.After(cfg.DrainDelay):
	case <-hurry:
		logger.Info("second signal: ending the drain now")
	}
	// Close the listener first (new connections are refused, and a proxy
	// retries a refused dial elsewhere), then let every connection already
	// accepted deliver and finish its request: http.Server.Shutdown drops a
	// request that it reads after it began, which a proxy sees as EOF on a
	// POST it will not retry. Answers say Connection: close, so each such
	// connection ends with its request.
	logger.Info("shutting down: finishing in-flight requests")
	_ = ln.Close()
	conns.waitQuiet(10 * time.Second)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// onceCloseListener lets the drain close the listener before
// http.Server.Shutdown, which closes it again.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// connTracker knows which connections are between accepting and finishing
// a request (http.StateNew or StateActive).
type connTracker struct {
	mu   sync.Mutex
	busy map[net.Conn]bool
}

func newConnTracker() *connTracker { return &connTracker{busy: map[net.Conn]bool{}} }

func (t *connTracker) track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive:
		t.busy[c] = true
	default:
		delete(t.busy, c)
	}
}

// waitQuiet waits until no connection is busy, or at most max.
func (t *connTracker) waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		n := len(t.busy)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runRotate is `azen-backend rotate-keys`.
func runRotate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rotate-keys", flag.ContinueOnError)
	fs.SetOutput(stdout)
	batch := fs.Int("batch", 500, "memories re-encrypted per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 10000 {
		return fmt.Errorf("--batch must be from 1 to 10000")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rotate-keys takes no arguments, got %q", fs.Arg(0))
	}
	cfg, err := loadStoreConfig(getenv)
	if err != nil {
		return err
	}
	logger := logline.New(stdout, "azen-backend.rotate-keys")
	// rotate-keys only changes an existing database: an unset or mistyped
	// AZEN_DATABASE_URL must not be answered from a new, empty one.
	where := "AZEN_DATABASE_URL=" + sqldb.Describe(cfg.DatabaseURL)
	if getenv("AZEN_DATABASE_URL") == "" {
		where = "AZEN_DATABASE_URL is unset, so the default " + sqldb.Describe(cfg.DatabaseURL) + " was used"
	}
	if err := sqldb.CheckExists(ctx, cfg.DatabaseURL); errors.Is(err, sqldb.ErrNoDatabase) {
		return fmt.Errorf("the database does not exist (%s): run rotate-keys with the AZEN_DATABASE_URL the replicas use", where)
	} else if err != nil {
		return fmt.Errorf("AZEN_DATABASE_URL (%s): %v", where, err)
	}
	store, db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := store.Rotate(ctx, *batch, func(done int) {
		logger.Info("re-encrypted", "memories", done)
	})
	if err != nil {
		return fmt.Errorf("rotate-keys after %d memories: %v", n, err)
	}
	total, err := store.Count(ctx)
	if err != nil {
		return fmt.Errorf("rotate-keys: count memories: %v", err)
	}
	key := cfg.EncryptionKeys[0].ID
	switch {
	case total == 0:
		logger.Warn("nothing to re-encrypt: the database holds no memories; is AZEN_DATABASE_URL the replicas' database?",
			"database", sqldb.Describe(cfg.DatabaseURL), "memories", 0)
	case n == 0:
		logger.Info("nothing to re-encrypt: every memory was already sealed with the first key", "key", key, "memories", 0, "total", total)
	default:
		logger.Info("done: every memory is sealed with the first key", "key", key, "memories", n, "total", total)
	}
	return nil
}
