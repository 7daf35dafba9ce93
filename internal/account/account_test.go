package account

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
	"github.com/azen-sh/gateway/internal/token"
)

// TestStore runs the same rules on both databases.
func TestStore(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			url := "sqlite:" + filepath.Join(t.TempDir(), "accounts.db")
			if kind == "postgres" {
				url = pg.CreateDatabase(t)
			}
			testStoreRules(t, openTestStore(t, url))
		})
	}
}

func openTestStore(t *testing.T, url string) *Store {
	t.Helper()
	db, err := sqldb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := NewStore(db)
	st.PasswordCost = bcrypt.MinCost
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	return st
}

func testStoreRules(t *testing.T, st *Store) {
	ctx := context.Background()
	now := time.Now()
	ada, err := st.CreateUser(ctx, "ada@example.com", "Ada", "correct horse battery", now)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an email is unique whatever its case", func(t *testing.T) {
		email, err := NormalizeEmail("  ADA@Example.com ")
		if err != nil || email != "ada@example.com" {
			t.Fatalf("NormalizeEmail = %q, %v", email, err)
		}
		if _, err := st.CreateUser(ctx, email, "Other", "another password", now); !errors.Is(err, ErrEmailTaken) {
			t.Fatalf("second sign-up with the same email: %v", err)
		}
	})
	t.Run("sign-in with the right password", func(t *testing.T) {
		u, err := st.Authenticate(ctx, "Ada@Example.com", "correct horse battery")
		if err != nil || u.ID != ada.ID || u.Name != "Ada" {
			t.Fatalf("Authenticate = %+v, %v", u, err)
		}
	})
	t.Run("a wrong password and a wrong email give the same error", func(t *testing.T) {
		if _, err := st.Authenticate(ctx, "ada@example.com", "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if _, err := st.Authenticate(ctx, "nobody@example.com", "correct horse battery"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong email: %v", err)
		}
	})

	org, err := st.CreateOrganization(ctx, ada.ID, "Acme", now)
	if err != nil || org.Role != RoleOwner {
		t.Fatalf("CreateOrganization = %+v, %v", org, err)
	}
	bob, _ := st.CreateUser(ctx, "bob@example.com", "Bob", "bob's long password", now)

	t.Run("memberships list the person's organizations with their role", func(t *testing.T) {
		ms, err := st.Memberships(ctx, ada.ID)
		if err != nil || len(ms) != 1 || ms[0].ID != org.ID || ms[0].Name != "Acme" || ms[0].Role != RoleOwner {
			t.Fatalf("Memberships = %+v, %v", ms, err)
		}
		if ms, _ := st.Memberships(ctx, bob.ID); len(ms) != 0 {
			t.Fatalf("bob's memberships %+v", ms)
		}
	})

	t.Run("a session is found by its token's hash only", func(t *testing.T) {
		sess, plain, err := st.CreateSession(ctx, ada.ID, "", DefaultSessionTTL, now)
		if err != nil {
			t.Fatal(err)
		}
		if !WellFormedSessionToken(plain) || apikey.WellFormed(plain) {
			t.Fatalf("session token %q has the wrong shape", plain)
		}
		got, err := st.SessionByHash(ctx, token.HashOf(plain))
		if err != nil || got.ID != sess.ID || got.UserID != ada.ID || got.ActiveOrganizationID != "" || got.Expired(now) {
			t.Fatalf("SessionByHash = %+v, %v", got, err)
		}
		if _, err := st.SessionByHash(ctx, token.HashOf(plain+"x")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
	})
	t.Run("the active organization must be one of the person's", func(t *testing.T) {
		sess, _, _ := st.CreateSession(ctx, bob.ID, "", DefaultSessionTTL, now)
		if _, err := st.SetActiveOrganization(ctx, sess.ID, bob.ID, org.ID); !errors.Is(err, ErrNotMember) {
			t.Fatalf("bob chose Acme: %v", err)
		}
		if err := st.AddMember(ctx, org.ID, bob.ID, RoleMember, now); err != nil {
			t.Fatal(err)
		}
		got, err := st.SetActiveOrganization(ctx, sess.ID, bob.ID, org.ID)
		if err != nil || got.ActiveOrganizationID != org.ID || got.Role != RoleMember {
			t.Fatalf("SetActiveOrganization = %+v, %v", got, err)
		}
		if slices.Contains(got.Permissions(), apikey.KeysWrite) || !slices.Contains(got.Permissions(), apikey.MemoryWrite) {
			t.Fatalf("member permissions %v", got.Permissions())
		}
	})
	t.Run("removing a member ends the sessions in that organization", func(t *testing.T) {
		sess, _, err := st.CreateSession(ctx, bob.ID, org.ID, DefaultSessionTTL, now)
		if err != nil {
			t.Fatal(err)
		}
		ended, err := st.RemoveMember(ctx, org.ID, bob.ID)
		if err != nil || !slices.Contains(ended, sess.ID) {
			t.Fatalf("RemoveMember ended %v, %v", ended, err)
		}
		if _, err := st.SessionByID(ctx, sess.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session of a removed member: %v", err)
		}
		if _, err := st.RemoveMember(ctx, org.ID, bob.ID); !errors.Is(err, ErrNotMember) {
			t.Fatalf("removing twice: %v", err)
		}
	})
	t.Run("sessions slide and expire", func(t *testing.T) {
		sess, _, _ := st.CreateSession(ctx, ada.ID, org.ID, time.Hour, now)
		if err := st.TouchSession(ctx, sess.ID, now.Add(30*time.Minute), time.Hour); err != nil {
			t.Fatal(err)
		}
		got, _ := st.SessionByID(ctx, sess.ID)
		if want := now.Add(90 * time.Minute); got.ExpiresAt.Sub(want).Abs() > time.Second {
			t.Fatalf("expires %s, want %s", got.ExpiresAt, want)
		}
		if !got.Expired(now.Add(2*time.Hour)) || got.ActiveOrganizationID != org.ID || got.Role != RoleOwner {
			t.Fatalf("session %+v", got)
		}
		// An ended session is not revived by a late touch.
		if err := st.TouchSession(ctx, sess.ID, now.Add(3*time.Hour), time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.SessionByID(ctx, sess.ID); !got.Expired(now.Add(2 * time.Hour)) {
			t.Fatalf("expired session revived: %+v", got)
		}
		if n, err := st.DeleteExpiredSessions(ctx, now.Add(2*time.Hour)); err != nil || n < 1 {
			t.Fatalf("DeleteExpiredSessions = %d, %v", n, err)
		}
	})
	t.Run("a password change ends every session of the person", func(t *testing.T) {
		s1, _, _ := st.CreateSession(ctx, ada.ID, "", DefaultSessionTTL, now)
		s2, _, _ := st.CreateSession(ctx, ada.ID, org.ID, DefaultSessionTTL, now)
		if _, err := st.ChangePassword(ctx, ada.ID, "not the password", "a new password!", now); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("change with a wrong current password: %v", err)
		}
		ended, err := st.ChangePassword(ctx, ada.ID, "correct horse battery", "a new password!", now)
		if err != nil || !slices.Contains(ended, s1.ID) || !slices.Contains(ended, s2.ID) {
			t.Fatalf("ChangePassword ended %v, %v", ended, err)
		}
		if _, err := st.Authenticate(ctx, "ada@example.com", "a new password!"); err != nil {
			t.Fatalf("new password refused: %v", err)
		}
	})
	t.Run("sign-out deletes the session", func(t *testing.T) {
		sess, plain, _ := st.CreateSession(ctx, ada.ID, "", DefaultSessionTTL, now)
		if err := st.DeleteSession(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SessionByHash(ctx, token.HashOf(plain)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("signed-out session: %v", err)
		}
	})
}

func TestFieldRules(t *testing.T) {
	for _, bad := range []string{"", "ada", "ada@", "@example.com", "ada@example", "Ada <ada@example.com>", "a b@example.com", strings.Repeat("a", 250) + "@example.com"} {
		if _, err := NormalizeEmail(bad); err == nil {
			t.Errorf("NormalizeEmail(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"short", strings.Repeat("x", 73), "ninechars"} {
		if err := CheckPassword(bad); err == nil {
			t.Errorf("CheckPassword(%q) accepted", bad)
		}
	}
	if err := CheckPassword("ten chars!"); err != nil {
		t.Errorf("a 10-character password refused: %v", err)
	}
	for _, bad := range []string{"", "   ", "a\nb", strings.Repeat("x", 101)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}
