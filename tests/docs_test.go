package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Docs that work as written (issue 13 item 6): every relative link of the
// README and docs/*.md resolves, anchors included, and every Caddyfile
// snippet marked as such adapts with the real binary.

// docFiles are the documents a clone carries.
func docFiles(t *testing.T) []string {
	t.Helper()
	root := testenv.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

// mdLine is a line of a Markdown file outside fenced code blocks, or the
// fence's info string for the line that opens one.
type mdDoc struct {
	lines    []string
	inFence  []bool // the line is inside a fenced block (fences excluded)
	headings map[string]bool
}

func readDoc(t *testing.T, path string) mdDoc {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := mdDoc{lines: strings.Split(string(raw), "\n"), headings: map[string]bool{}}
	d.inFence = make([]bool, len(d.lines))
	in := false
	seen := map[string]int{}
	for i, l := range d.lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			continue
		}
		d.inFence[i] = in
		if !in && strings.HasPrefix(l, "#") {
			s := githubSlug(strings.TrimLeft(l, "#"))
			if n := seen[s]; n > 0 {
				d.headings[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				d.headings[s] = true
			}
			seen[s]++
		}
	}
	return d
}

// githubSlug is the anchor GitHub gives a heading: lower case, letters,
// digits, - and _ kept, spaces made -, everything else dropped.
func githubSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

var mdLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)

func TestDocLinksResolve(t *testing.T) {
	docs := map[string]mdDoc{}
	load := func(p string) mdDoc {
		if d, ok := docs[p]; ok {
			return d
		}
		docs[p] = readDoc(t, p)
		return docs[p]
	}
	checked := 0
	for _, file := range docFiles(t) {
		d := load(file)
		rel, _ := filepath.Rel(testenv.RepoRoot(t), file)
		for i, l := range d.lines {
			if d.inFence[i] {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				p, anchor, _ := strings.Cut(target, "#")
				dest := file
				if p != "" {
					dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(p))
				}
				if r, err := filepath.Rel(testenv.RepoRoot(t), dest); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s:%d: link %s leaves the repository: a clone does not have it", rel, i+1, target)
					continue
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s:%d: link %s: %s does not exist", rel, i+1, target, p)
					continue
				}
				if anchor != "" && strings.HasSuffix(dest, ".md") && !load(dest).headings[anchor] {
					t.Errorf("%s:%d: link %s: no heading #%s in %s", rel, i+1, target, anchor, filepath.Base(dest))
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d relative links found; the link pattern is broken", checked)
	}
}

// Markers on the line before a ```caddyfile block.
const (
	adaptsWhole   = "<!-- caddyfile: adapts -->"
	adaptsInASite = "<!-- caddyfile: adapts in a site block -->"
)

func TestDocCaddyfileSnippetsAdapt(t *testing.T) {
	dir := t.TempDir()
	n := 0
	for _, file := range docFiles(t) {
		d := readDoc(t, file)
		rel, _ := filepath.Rel(testenv.RepoRoot(t), file)
		for i := 0; i+1 < len(d.lines); i++ {
			marker := strings.TrimSpace(d.lines[i])
			if marker != adaptsWhole && marker != adaptsInASite {
				continue
			}
			if strings.TrimSpace(d.lines[i+1]) != "```caddyfile" {
				t.Errorf("%s:%d: the marker is not followed by a ```caddyfile block", rel, i+1)
				continue
			}
			var body []string
			j := i + 2
			for ; j < len(d.lines) && strings.TrimSpace(d.lines[j]) != "```"; j++ {
				body = append(body, d.lines[j])
			}
			snippet := strings.Join(body, "\n") + "\n"
			if marker == adaptsInASite {
				snippet = ":8080 {\n" + snippet + "}\n"
			}
			n++
			cfg := filepath.Join(dir, fmt.Sprintf("snippet%d.caddyfile", n))
			if err := os.WriteFile(cfg, []byte(snippet), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, errOut, err := testenv.TryCommand(t, nil, "adapt", "--config", cfg, "--adapter", "caddyfile"); err != nil {
				t.Errorf("%s:%d: the snippet does not adapt: %v\n%s\n%s", rel, i+3, err, errOut, snippet)
			}
			i = j
		}
	}
	if n < 2 {
		t.Fatalf("only %d marked snippets found", n)
	}
}
