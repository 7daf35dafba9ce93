package azenauth

// `keys update` and `keys reroll` (contract §10), the flag rules they share
// with `keys create`, and the quota use `keys list` shows.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/revocation"
)

// MaxGrace is the longest grace period of a reroll (contract §10: 0–86 400 s).
const MaxGrace = 24 * time.Hour

// parseDurationFlag reads a duration flag of the keys command: Go units
// plus d for days (30d, 1d12h), as Caddy reads durations and as rates
// accept d. Every duration flag goes through it.
func parseDurationFlag(flag, s string) (time.Duration, error) {
	d, err := caddy.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("--%s %q is not a duration such as 90m, 720h or 30d", flag, s)
	}
	return d, nil
}

// checkNameFlag is the --name rule.
func checkNameFlag(name string) error {
	if len(name) > 255 || strings.ContainsAny(name, "\r\n\x00") {
		return errors.New("--name must be at most 255 characters on one line")
	}
	return nil
}

// checkTierFlag is the --tier rule ("" is no tier).
func checkTierFlag(tier string) error {
	if tier != "" && !ratespec.ValidTierName(tier) {
		return fmt.Errorf("--tier %q: %s", tier, ratespec.TierNameRule)
	}
	return nil
}

// rateFlag reads --rate and --burst into the stored rate_limit text; --rate
// none (or empty) is no override.
func rateFlag(cmd *cobra.Command, rate string, burst int) (string, error) {
	rate = strings.TrimSpace(rate)
	burstSet := cmd.Flags().Changed("burst")
	if rate == "none" || rate == "" {
		if burstSet {
			return "", errors.New("--burst needs --rate")
		}
		return "", nil
	}
	r, err := ratespec.ParseRate(rate)
	if err != nil {
		return "", fmt.Errorf("--rate: %w", err)
	}
	p := ratespec.Policy{Rate: r}
	if burstSet {
		if burst < 1 {
			return "", fmt.Errorf("--burst must be at least 1, got %d", burst)
		}
		p.Burst = burst
	}
	return p.String(), nil
}

// keyIDArg checks the one ID argument of a subcommand.
func keyIDArg(verb string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("keys %s needs exactly one key id, got %d arguments", verb, len(args))
		}
		if !ids.Valid(args[0]) {
			return fmt.Errorf("keys %s: %q is not a key id (a UUID)", verb, args[0])
		}
		return nil
	}
}

// checkRedisURL refuses a malformed AZEN_REDIS_URL before anything is
// changed: a change that could not be announced would look applied on no
// gateway for up to cache_ttl.
func checkRedisURL() error {
	if u := os.Getenv("AZEN_REDIS_URL"); strings.TrimSpace(u) != "" {
		if _, err := redisconn.Parse(u); err != nil {
			return fmt.Errorf("AZEN_REDIS_URL: %v", err)
		}
	}
	return nil
}

// announce publishes that key id changed, so every gateway drops it from
// its cache within a second; past names the change for the error.
func announce(ctx context.Context, id, past string) error {
	if err := revocation.PublishOnce(ctx, os.Getenv("AZEN_REDIS_URL"), revocation.Key(id)); err != nil {
		return fmt.Errorf("key %s %s, but the invalidation could not be published on AZEN_REDIS_URL (%v); gateways apply the change within their cache_ttl", id, past, err)
	}
	return nil
}

// updateFlags are the changes `keys update` may make.
var updateFlags = []string{"name", "tier", "rate", "burst", "expires-in", "permissions", "quota"}

func updateCommand() *cobra.Command {
	var name, tier, rate, expiresIn, perms, quotaText string
	var burst int
	var asJSON bool
	c := &cobra.Command{
		Use: "update ID [--name N] [--tier T] [--rate 120/m [--burst 20] | --rate none] [--expires-in 30d | never]" +
			" [--permissions p,q] [--quota N/month | none] [--json]",
		Short: "Changes a key in place (same id and secret); every gateway applies it within a second",
		Args:  keyIDArg("update"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ids.Normalize(args[0])
			p, err := patchFromFlags(cmd, name, tier, rate, burst, expiresIn, perms, quotaText, time.Now())
			if err != nil {
				return err
			}
			if err := checkRedisURL(); err != nil {
				return err
			}
			return withCLIStore(cmd, openExisting, func(ctx context.Context, st *apikey.Store) error {
				k, err := st.Update(ctx, "", id, p)
				if errors.Is(err, apikey.ErrNotFound) {
					return fmt.Errorf("no API key with id %s", id)
				}
				if err != nil {
					return err
				}
				if err := announce(ctx, id, "updated"); err != nil {
					return err
				}
				if !asJSON {
					_, err = fmt.Fprintf(cmd.OutOrStdout(), "updated key %s\n", id)
					return err
				}
				j := toJSON(k)
				addQuotaUse(ctx, cmd.ErrOrStderr(), []apikey.Key{k}, []keyJSON{j}, time.Now())
				return writeJSON(cmd.OutOrStdout(), j)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "new name (empty clears it)")
	f.StringVar(&tier, "tier", "", "new rate-limit tier (empty: none)")
	f.StringVar(&rate, "rate", "", "new per-key rate override, COUNT/UNIT such as 120/m; none removes it")
	f.IntVar(&burst, "burst", 0, "burst of the --rate override (default: the limiter's)")
	f.StringVar(&expiresIn, "expires-in", "", "new lifetime from now, such as 720h or 30d; never removes the expiry")
	f.StringVar(&perms, "permissions", "", "the new permission list, comma-separated: memory:read, memory:write, keys:read, keys:write")
	f.StringVar(&quotaText, "quota", "", "new quota, 500/day or 10000/month; none removes it")
	f.BoolVar(&asJSON, "json", false, "print the key as keys list --json does")
	return c
}

// patchFromFlags checks every given flag, in the order of the usage line,
// and names the first one at fault; nothing is changed on an error.
func patchFromFlags(cmd *cobra.Command, name, tier, rate string, burst int, expiresIn, perms, quotaText string, now time.Time) (apikey.Patch, error) {
	changed := cmd.Flags().Changed
	var p apikey.Patch
	if changed("name") {
		if err := checkNameFlag(name); err != nil {
			return p, err
		}
		p.Name = &name
	}
	if changed("tier") {
		if err := checkTierFlag(tier); err != nil {
			return p, err
		}
		p.Tier = &tier
	}
	if changed("rate") || changed("burst") {
		if !changed("rate") {
			return p, errors.New("--burst needs --rate")
		}
		text, err := rateFlag(cmd, rate, burst)
		if err != nil {
			return p, err
		}
		p.RateLimit = &text
	}
	if changed("expires-in") {
		var at time.Time // never
		if strings.TrimSpace(expiresIn) != "never" {
			d, err := parseDurationFlag("expires-in", expiresIn)
			if err != nil {
				return p, err
			}
			if d <= 0 {
				return p, fmt.Errorf("--expires-in must be positive (or never), got %s", expiresIn)
			}
			at = now.Add(d)
		}
		p.ExpiresAt = &at
	}
	if changed("permissions") {
		list, err := apikey.ParsePermissions(perms)
		if err != nil {
			return p, fmt.Errorf("--permissions: %w", err)
		}
		p.Permissions = list
	}
	if changed("quota") {
		q, err := apikey.ParseQuota(quotaText)
		if err != nil {
			return p, fmt.Errorf("--quota: %w", err)
		}
		p.Quota = &q
	}
	if p.Empty() {
		return p, fmt.Errorf("keys update needs at least one change: --%s", strings.Join(updateFlags, ", --"))
	}
	return p, nil
}

func rerollCommand() *cobra.Command {
	var grace string
	var asJSON bool
	c := &cobra.Command{
		Use:   "reroll ID [--grace 1h] [--json]",
		Short: "Gives a key a new secret (shown once); the old one works until the grace period ends",
		Args:  keyIDArg("reroll"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ids.Normalize(args[0])
			var g time.Duration
			if cmd.Flags().Changed("grace") {
				var err error
				if g, err = parseDurationFlag("grace", grace); err != nil {
					return err
				}
				if g < 0 || g > MaxGrace {
					return fmt.Errorf("--grace must be from 0 to 24h, got %s", grace)
				}
			}
			if err := checkRedisURL(); err != nil {
				return err
			}
			return withCLIStore(cmd, openExisting, func(ctx context.Context, st *apikey.Store) error {
				now := time.Now()
				k, plain, err := st.Reroll(ctx, "", id, g, now)
				if errors.Is(err, apikey.ErrNotFound) {
					return fmt.Errorf("no API key with id %s", id)
				}
				if err != nil {
					return err
				}
				// Every gateway drops what it cached under the old secret:
				// without a grace period it is refused at once, with one it
				// is looked up again and carries its end.
				announceErr := announce(ctx, id, "rerolled")
				if err := printRerolled(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), k, plain, asJSON, now); err != nil {
					return err
				}
				// The new secret is printed even when the announcement
				// failed: it exists now and is shown only once.
				return announceErr
			})
		},
	}
	c.Flags().StringVar(&grace, "grace", "", "how long the old secret keeps working, 0 to 24h (such as 1h or 1d); default: it stops at once")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object, as keys create --json does")
	return c
}

func printRerolled(ctx context.Context, w, errOut io.Writer, k apikey.Key, plain string, asJSON bool, now time.Time) error {
	if asJSON {
		j := toJSON(k)
		j.Key = plain
		addQuotaUse(ctx, errOut, []apikey.Key{k}, []keyJSON{j}, now)
		return writeJSON(w, j)
	}
	old := "The previous secret stopped working now."
	if !k.PreviousExpiresAt.IsZero() {
		old = "The previous secret keeps working until " + k.PreviousExpiresAt.UTC().Format(time.RFC3339) + "."
	}
	_, err := fmt.Fprintf(w, "Rerolled API key %s (same id, settings and usage). %s\n"+
		"New key (shown only now, store it safely):\n%s\n", k.ID, old, plain)
	return err
}

// quotaJSON is a key's quota as the keys command prints it. Used is the
// count in the current period, read from Redis; null when it cannot be
// read (no AZEN_REDIS_URL: each gateway then counts on its own, in
// memory, where the command cannot see it).
type quotaJSON struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"`
	Used   *int64 `json:"used"`
}

// quotaUseTimeout bounds reading quota use for one command.
const quotaUseTimeout = 5 * time.Second

// addQuotaUse fills in quota use for the keys with a quota (out[i] is
// keys[i]) when AZEN_REDIS_URL is set. A Redis that cannot be asked leaves
// used null and says so on errOut: listing keys does not depend on Redis.
func addQuotaUse(ctx context.Context, errOut io.Writer, keys []apikey.Key, out []keyJSON, now time.Time) {
	raw := strings.TrimSpace(os.Getenv("AZEN_REDIS_URL"))
	if raw == "" {
		return
	}
	var withQuota []int
	for i, k := range keys {
		if !k.Quota.IsZero() && out[i].Quota != nil {
			withQuota = append(withQuota, i)
		}
	}
	if len(withQuota) == 0 {
		return
	}
	o, err := redisconn.Parse(raw)
	if err != nil {
		fmt.Fprintf(errOut, "quota use not shown: AZEN_REDIS_URL: %v\n", err)
		return
	}
	client := o.NewClient()
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, quotaUseTimeout)
	defer cancel()
	for _, i := range withQuota {
		n, err := quota.Used(ctx, client, keys[i].ID, keys[i].Quota, now)
		if err != nil {
			fmt.Fprintf(errOut, "quota use not shown: Redis at AZEN_REDIS_URL: %v\n", err)
			return
		}
		out[i].Quota.Used = &n
	}
}
