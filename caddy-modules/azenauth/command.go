package azenauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/logline"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "keys",
		Usage: "create|list|update|reroll|disable|enable|delete ...",
		Short: "Manages Azen API keys",
		Long: `
Manages the API keys azen_auth accepts, in the database named by
AZEN_DATABASE_URL (default sqlite:azen.db). Only create may start a new
database (it says so); the other commands refuse one that does not exist.
update, reroll, disable, enable and delete publish an invalidation on
AZEN_REDIS_URL when it is set, so every gateway applies the change within a
second. Durations take Go units and d for days (30d). See docs/auth.md.

  keys create --org UUID --user ID [--name N] [--expires-in 720h] [--tier T]
              [--rate 120/m [--burst 20]] [--permissions p,q] [--quota N/month] [--json]
  keys list [--org UUID] [--json]
  keys update ID [--name N] [--tier T] [--rate 120/m [--burst 20] | none]
              [--expires-in 30d | never] [--permissions p,q] [--quota N/month | none] [--json]
  keys reroll ID [--grace 1h] [--json]
  keys disable ID | enable ID | delete ID
`,
		CobraFunc: buildKeysCommand,
	})
}

// cliTimeout bounds everything one CLI invocation does.
const cliTimeout = 30 * time.Second

func buildKeysCommand(cmd *cobra.Command) {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return errors.New("keys needs a subcommand: create, list, update, reroll, disable, enable or delete (see azen-gateway keys --help)")
	}
	cmd.AddCommand(createCommand(), listCommand(), updateCommand(), rerollCommand(),
		stateCommand("disable", "Disables a key (it is refused with 403 until enabled)"),
		stateCommand("enable", "Enables a disabled key"),
		stateCommand("delete", "Deletes a key for good"))
	// An error is one line (`Error: …`), whatever the driver's text; a
	// Redis failure is in it, so go-redis's own log lines would only repeat it.
	for _, sub := range cmd.Commands() {
		run := sub.RunE
		sub.RunE = func(c *cobra.Command, args []string) error {
			redisconn.SetLogger(func(context.Context, string) {})
			if err := run(c, args); err != nil {
				return errors.New(logline.OneLine(err))
			}
			return nil
		}
	}
}

// keyJSON is a key as `keys create --json` and `keys list --json` print it.
// It never holds the hash; Key (the plaintext) only right after create.
type keyJSON struct {
	ID                string     `json:"id"`
	Key               string     `json:"key,omitempty"`
	Prefix            string     `json:"prefix"`
	Name              string     `json:"name"`
	OrganizationID    string     `json:"organizationId"`
	UserID            string     `json:"userId"`
	Enabled           bool       `json:"enabled"`
	ExpiresAt         *string    `json:"expiresAt"`
	Tier              string     `json:"tier"`
	RateLimit         string     `json:"rateLimit"`
	Permissions       []string   `json:"permissions"`
	Quota             *quotaJSON `json:"quota"`
	CreatedAt         string     `json:"createdAt"`
	LastUsedAt        *string    `json:"lastUsedAt,omitempty"`
	PreviousExpiresAt *string    `json:"previousExpiresAt,omitempty"`
}

func toJSON(k apikey.Key) keyJSON {
	j := keyJSON{
		ID: k.ID, Prefix: k.Prefix, Name: k.Name, OrganizationID: k.OrganizationID,
		UserID: k.UserID, Enabled: k.Enabled, Tier: k.Tier, RateLimit: k.RateLimit,
		Permissions: k.Permissions,
		CreatedAt:   k.CreatedAt.UTC().Format(time.RFC3339),
	}
	if !k.Quota.IsZero() {
		j.Quota = &quotaJSON{Limit: k.Quota.Limit, Period: k.Quota.Period}
	}
	// Only during the grace period (contract §10); a previous secret past
	// it is refused and is forgotten by the gateways' next sweep.
	if !k.PreviousExpiresAt.IsZero() && time.Now().Before(k.PreviousExpiresAt) {
		s := k.PreviousExpiresAt.UTC().Format(time.RFC3339)
		j.PreviousExpiresAt = &s
	}
	if !k.ExpiresAt.IsZero() {
		s := k.ExpiresAt.UTC().Format(time.RFC3339)
		j.ExpiresAt = &s
	}
	if !k.LastUsedAt.IsZero() {
		s := k.LastUsedAt.UTC().Format(time.RFC3339)
		j.LastUsedAt = &s
	}
	return j
}

// The keys commands and the database they may use.
const (
	openExisting = false // list, update, reroll, disable, enable, delete
	mayCreate    = true  // create
)

// withCLIStore runs fn with the store of AZEN_DATABASE_URL, opened and
// migrated, under the CLI's time limit. Only `keys create` (create true)
// may start a new database: every other command refuses one that does not
// exist, so a wrong or unset AZEN_DATABASE_URL is not answered from a new,
// empty one. Errors name the URL used, without its password.
func withCLIStore(cmd *cobra.Command, create bool, fn func(ctx context.Context, st *apikey.Store) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), cliTimeout)
	defer cancel()
	raw := strings.TrimSpace(os.Getenv("AZEN_DATABASE_URL"))
	if _, err := sqldb.Parse(raw); err != nil {
		return fmt.Errorf("AZEN_DATABASE_URL: %w", err)
	}
	where := "AZEN_DATABASE_URL=" + sqldb.Describe(raw)
	if raw == "" {
		raw = sqldb.DefaultURL
		where = "AZEN_DATABASE_URL is unset, so the default " + sqldb.Describe(raw) + " was used"
	}
	t, _ := sqldb.Parse(raw)
	// PostgreSQL says itself that a database does not exist, on create too.
	if !create || t.Kind == sqldb.SQLite {
		err := sqldb.CheckExists(ctx, raw)
		switch {
		case errors.Is(err, sqldb.ErrNoDatabase) && create:
			defer func() {
				if sqldb.CheckExists(ctx, raw) == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Note: created a new database (%s)\n", where)
				}
			}()
		case errors.Is(err, sqldb.ErrNoDatabase):
			return fmt.Errorf("the database does not exist (%s): run the command with the AZEN_DATABASE_URL the gateway uses; only keys create makes a new database", where)
		case err != nil:
			return fmt.Errorf("key store (%s): %w", where, err)
		}
	}
	db, err := sqldb.Open(raw)
	if err != nil {
		return fmt.Errorf("AZEN_DATABASE_URL: %w", err)
	}
	defer db.Close()
	st := apikey.NewStore(db)
	if err := st.Migrate(ctx); err != nil {
		if sqldb.IsNoDatabase(err) {
			return fmt.Errorf("the database does not exist (%s): %w", where, err)
		}
		return fmt.Errorf("key store (%s): %w", where, err)
	}
	return fn(ctx, st)
}

func createCommand() *cobra.Command {
	var org, user, name, tier, rate, perms, quota, expiresIn string
	var burst int
	var asJSON bool
	c := &cobra.Command{
		Use:   "create --org UUID --user ID [--name N] [--expires-in 720h] [--tier T] [--rate 120/m [--burst 20]] [--permissions p,q] [--quota N/month] [--json]",
		Short: "Creates a key and prints it (the only time it is shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nk, err := newKeyFromFlags(cmd, org, user, name, tier, rate, burst, expiresIn)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("permissions") {
				if nk.Permissions, err = apikey.ParsePermissions(perms); err != nil {
					return fmt.Errorf("--permissions: %w", err)
				}
			}
			if nk.Quota, err = apikey.ParseQuota(quota); err != nil {
				return fmt.Errorf("--quota: %w", err)
			}
			return withCLIStore(cmd, mayCreate, func(ctx context.Context, st *apikey.Store) error {
				k, plain, err := st.Create(ctx, nk, time.Now())
				if err != nil {
					return err
				}
				return printCreated(cmd.OutOrStdout(), k, plain, asJSON)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&org, "org", "", "organization id (UUID, required)")
	f.StringVar(&user, "user", "", "user id (required)")
	f.StringVar(&name, "name", "", "a name to recognise the key by")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime such as 720h or 30d (default: never expires)")
	f.StringVar(&tier, "tier", "", "rate-limit tier name (as in azen_ratelimit's tier lines)")
	f.StringVar(&rate, "rate", "", "per-key rate limit override, COUNT/UNIT such as 120/m")
	f.IntVar(&burst, "burst", 0, "burst of the --rate override (default: the limiter's)")
	f.StringVar(&perms, "permissions", "", "comma-separated permissions: memory:read, memory:write, keys:read, keys:write (default memory:read,memory:write)")
	f.StringVar(&quota, "quota", "", "requests per UTC day or month, as 500/day or 10000/month (default: none)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
}

func newKeyFromFlags(cmd *cobra.Command, org, user, name, tier, rate string, burst int, expiresIn string) (apikey.NewKey, error) {
	type NewKey = apikey.NewKey
	org = ids.Normalize(org)
	switch {
	case org == "":
		return NewKey{}, errors.New("--org is required (the organization's UUID)")
	case !ids.Valid(org):
		return NewKey{}, fmt.Errorf("--org %q is not a UUID", org)
	case strings.TrimSpace(user) == "":
		return NewKey{}, errors.New("--user is required (a non-empty user id)")
	case !usableUserID(user) || !utf8.ValidString(user):
		// The same rule the gateway applies before it forwards a user id.
		return NewKey{}, errors.New("--user must be at most 255 bytes of UTF-8 text without control characters")
	}
	if err := checkNameFlag(name); err != nil {
		return NewKey{}, err
	}
	nk := NewKey{OrganizationID: org, UserID: strings.TrimSpace(user), Name: name, Tier: tier}
	if cmd.Flags().Changed("expires-in") {
		d, err := parseDurationFlag("expires-in", expiresIn)
		if err != nil {
			return NewKey{}, err
		}
		if d <= 0 {
			return NewKey{}, fmt.Errorf("--expires-in must be positive, got %s", expiresIn)
		}
		nk.ExpiresAt = time.Now().Add(d)
	}
	if err := checkTierFlag(tier); err != nil {
		return NewKey{}, err
	}
	var err error
	if nk.RateLimit, err = rateFlag(cmd, rate, burst); err != nil {
		return NewKey{}, err
	}
	return nk, nil
}

func printCreated(w io.Writer, k apikey.Key, plain string, asJSON bool) error {
	if asJSON {
		j := toJSON(k)
		j.Key = plain
		if j.Quota != nil {
			var none int64 // a new key has used none of it
			j.Quota.Used = &none
		}
		return writeJSON(w, j)
	}
	expires := "never"
	if !k.ExpiresAt.IsZero() {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(w, "Created API key %s (organization %s, user %s, expires %s).\n"+
		"Key (shown only now, store it safely):\n%s\n", k.ID, k.OrganizationID, k.UserID, expires, plain)
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listCommand() *cobra.Command {
	var org string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--org UUID] [--json]",
		Short: "Lists keys (never their plaintext or hash)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			org = ids.Normalize(org)
			if cmd.Flags().Changed("org") && !ids.Valid(org) {
				return fmt.Errorf("--org %q is not a UUID", org)
			}
			return withCLIStore(cmd, openExisting, func(ctx context.Context, st *apikey.Store) error {
				keys, err := st.List(ctx, org)
				if err != nil {
					return err
				}
				now := time.Now()
				out := make([]keyJSON, len(keys))
				for i, k := range keys {
					out[i] = toJSON(k)
				}
				addQuotaUse(ctx, cmd.ErrOrStderr(), keys, out, now)
				return printList(cmd.OutOrStdout(), keys, out, asJSON, now)
			})
		},
	}
	c.Flags().StringVar(&org, "org", "", "only this organization's keys (UUID)")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

// printList prints keys; out[i] is keys[i] as JSON, with quota use.
func printList(w io.Writer, keys []apikey.Key, out []keyJSON, asJSON bool, now time.Time) error {
	if asJSON {
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tORGANIZATION\tUSER\tSTATE\tEXPIRES\tTIER\tRATE\tPERMISSIONS\tQUOTA\tLAST USED\tCREATED")
	for i, k := range keys {
		state := "enabled"
		switch {
		case !k.Enabled:
			state = "disabled"
		case k.Expired(now):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, dash(k.Name),
			dash(k.OrganizationID), dash(k.UserID), state, dashTime(k.ExpiresAt), dash(k.Tier),
			dash(k.RateLimit), dash(strings.Join(k.Permissions, ",")), dash(quotaColumn(k.Quota, out[i].Quota)),
			dashTime(k.LastUsedAt), dashTime(k.CreatedAt))
	}
	return tw.Flush()
}

// quotaColumn is "12 of 10000/month" when the use is known, else the quota.
func quotaColumn(q apikey.Quota, j *quotaJSON) string {
	if j == nil || j.Used == nil {
		return q.String()
	}
	return fmt.Sprintf("%d of %s", *j.Used, q)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func stateCommand(verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  keyIDArg(verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ids.Normalize(args[0])
			if err := checkRedisURL(); err != nil {
				return err
			}
			return withCLIStore(cmd, openExisting, func(ctx context.Context, st *apikey.Store) error {
				var err error
				switch verb {
				case "disable":
					err = st.SetEnabled(ctx, "", id, false)
				case "enable":
					err = st.SetEnabled(ctx, "", id, true)
				default:
					err = st.Delete(ctx, "", id)
				}
				if errors.Is(err, apikey.ErrNotFound) {
					return fmt.Errorf("no API key with id %s", id)
				}
				if err != nil {
					return err
				}
				past := map[string]string{"disable": "disabled", "enable": "enabled", "delete": "deleted"}[verb]
				if err := announce(ctx, id, past); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s key %s\n", past, id)
				return err
			})
		},
	}
}
