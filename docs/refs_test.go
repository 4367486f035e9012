package docs

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The files whose text is searched for references: source, scripts,
// documents and configuration. Generated and third-party trees are skipped
// (skipDir).
var scannedExt = map[string]bool{
	".go": true, ".md": true, ".py": true, ".yaml": true, ".yml": true,
	".sh": true, ".mjs": true, ".sql": true,
}

// scannedDir holds scripts without an extension (scripts/test).
const scannedDir = "scripts"

func skipDir(name string) bool {
	return name != "." && (strings.HasPrefix(name, ".") || name == "node_modules" ||
		name == "__pycache__" || name == "venv" || name == "testdata" || name == "sfmigrate-demo")
}

var (
	// mdRef is a file name ending in .md. The character before it must not
	// be part of a name, so a path under docs/ is read whole.
	mdRef = regexp.MustCompile(`[A-Za-z0-9_./-]+\.md\b`)

	// secList is what may follow a document name to cite sections of it:
	// comment leaders and line breaks, then "§2.4", "2.4", "§4.2/§4.5",
	// "1.1-1.3", "§1.4 and §6.4", "3.3, 4.1-4.3", "§9 item 5".
	secList = regexp.MustCompile(`^(?:[ \t]|\n[ \t]*(?://+|#+|\*)?)*(§?[ \t]*\d+(?:\.\d+)*(?:[ \t]*(?:,|/|-|–|and)[ \t\n/]*§?[ \t]*\d+(?:\.\d+)*)*)`)

	// secNum is one section number inside a secList match.
	secNum = regexp.MustCompile(`\d+(?:\.\d+)*`)

	// looseSec is a section cited without a document name in front:
	// "§6.3", "(§1.4, §6.4)", "(2.5, 2.6)". It is read as a section of the
	// document the file cited last before it.
	// The parenthesised form takes only one-digit chapters from 1, so
	// "(12.50)" or "(0.1)" in an example is not read as a section.
	looseSec = regexp.MustCompile(`§[ \t]*\d+(?:\.\d+)*|\((?:[1-9]\.[0-9]{1,2}(?:, |-|–))*[1-9]\.[0-9]{1,2}[,)]`)

	// heading is a numbered Markdown heading: "## 2. Settings", "### 2.4 Upload".
	heading = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(\d+(?:\.\d+)*)\.?[ \t]`)
)

// self is this file: its test fixtures cite missing files on purpose.
const self = "docs/refs_test.go"

// problem is one broken reference, reported as file:line.
type problem struct {
	file string
	line int
	msg  string
}

func (p problem) String() string { return p.file + ":" + itoa(p.line) + ": " + p.msg }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// repo is the view of the repository the check needs: which files exist
// (slash paths from the root) and how to read one.
type repo struct {
	files map[string]bool
	read  func(name string) (string, error)
}

// resolve finds the file a reference in from names: relative to the citing
// file's directory, then to the repository root, then, for a bare name
// (design.md), in docs/. It returns "" when none exists. A path that leaves
// the repository never resolves.
func (r *repo) resolve(from, ref string) string {
	cands := []string{path.Join(path.Dir(from), ref), path.Clean(ref)}
	if !strings.Contains(ref, "/") {
		cands = append(cands, path.Join("docs", ref))
	}
	for _, c := range cands {
		if strings.HasPrefix(c, "../") || c == ".." {
			continue
		}
		if r.files[c] {
			return c
		}
	}
	return ""
}

// packageDoc returns the first document that the doc.go of dir names,
// resolved, and whether there is one.
func (r *repo) packageDoc(dir string) (string, bool) {
	docGo := path.Join(dir, "doc.go")
	if !r.files[docGo] {
		return "", false
	}
	text, err := r.read(docGo)
	if err != nil {
		return "", false
	}
	ref := mdRef.FindString(text)
	if ref == "" {
		return "", false
	}
	return r.resolve(docGo, ref), true
}

// sections returns the numbered headings of the document at name.
func (r *repo) sections(name string, cache map[string]map[string]bool) map[string]bool {
	if s, ok := cache[name]; ok {
		return s
	}
	s := map[string]bool{}
	if text, err := r.read(name); err == nil {
		for _, m := range heading.FindAllStringSubmatch(text, -1) {
			s[m[1]] = true
		}
	}
	cache[name] = s
	return s
}

// check scans every file of r and returns the broken references and the
// number of references and section citations it checked.
func (r *repo) check() (probs []problem, refs, secs int) {
	names := make([]string, 0, len(r.files))
	for f := range r.files {
		names = append(names, f)
	}
	sort.Strings(names)
	cache := map[string]map[string]bool{}
	for _, name := range names {
		if !scanned(name) || name == self {
			continue
		}
		text, err := r.read(name)
		if err != nil {
			probs = append(probs, problem{name, 0, "cannot read: " + err.Error()})
			continue
		}
		p, n, s := r.checkFile(name, text, cache)
		probs = append(probs, p...)
		refs += n
		secs += s
	}
	sort.SliceStable(probs, func(i, j int) bool {
		if probs[i].file != probs[j].file {
			return probs[i].file < probs[j].file
		}
		return probs[i].line < probs[j].line
	})
	return probs, refs, secs
}

func scanned(name string) bool {
	return scannedExt[path.Ext(name)] || path.Dir(name) == scannedDir
}

// checkFile checks the references of one file.
func (r *repo) checkFile(name, text string, cache map[string]map[string]bool) (probs []problem, refs, secs int) {
	lineOf := func(off int) int { return 1 + strings.Count(text[:off], "\n") }

	// cited[i] is the document the i-th resolved reference names, by offset,
	// so a loose "§6.3" can be read against the document cited before it.
	type cite struct {
		end    int
		target string
	}
	var cited []cite
	var covered [][2]int // spans of section lists already read after a name
	citeSecs := func(target, list string, off int) {
		known := r.sections(target, cache)
		for _, n := range secNum.FindAllString(list, -1) {
			secs++
			if !known[n] {
				probs = append(probs, problem{name, lineOf(off), "cites section " + n + " of " + target + ", which has no heading numbered " + n})
			}
		}
	}

	for _, loc := range mdRef.FindAllStringIndex(text, -1) {
		ref := text[loc[0]:loc[1]]
		tokStart := strings.LastIndexAny(text[:loc[0]], " \t\n\"'`(<[") + 1
		if strings.Contains(text[tokStart:loc[1]], "://") {
			continue // part of a link to another site
		}
		refs++
		target := r.resolve(name, ref)
		if target == "" {
			probs = append(probs, problem{name, lineOf(loc[0]), "cites " + ref + ", which is not in the repository (documents live in docs/)"})
		}
		end := loc[1]
		if m := secList.FindStringSubmatchIndex(text[loc[1]:]); m != nil {
			if target != "" {
				citeSecs(target, text[loc[1]+m[2]:loc[1]+m[3]], loc[1])
			}
			covered = append(covered, [2]int{loc[1] + m[2], loc[1] + m[3]})
			end = loc[1] + m[1]
		}
		cited = append(cited, cite{end, target}) // "" : sections after a missing file are not read
	}

	if path.Ext(name) == ".md" {
		return probs, refs, secs // a document's own "§" are its own sections: not checked
	}
	for _, loc := range looseSec.FindAllStringIndex(text, -1) {
		inList := false
		for _, c := range covered {
			if loc[0] < c[1] && loc[1] > c[0] {
				inList = true
			}
		}
		if inList {
			continue
		}
		target, named := "", false
		for _, c := range cited {
			if c.end > loc[0] {
				break
			}
			target, named = c.target, true
		}
		sect := strings.HasPrefix(text[loc[0]:], "§")
		if !named && sect && path.Ext(name) == ".go" && path.Base(name) != "doc.go" {
			// The package comment says which document the package's
			// section numbers refer to (salesforce/doc.go names
			// docs/salesforce-api.md): the first one it names. Only
			// for "§": a bare "(0.5)" in such a file is a number.
			target, named = r.packageDoc(path.Dir(name))
		}
		if !named {
			if sect {
				probs = append(probs, problem{name, lineOf(loc[0]), "cites " + text[loc[0]:loc[1]] + " without naming a document earlier in the file"})
			}
			continue
		}
		if target == "" {
			continue // the document is missing: reported once, above
		}
		citeSecs(target, text[loc[0]:loc[1]], loc[0])
	}
	return probs, refs, secs
}

// worktree reads the repository this test runs in.
func worktree(t *testing.T) *repo {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	r := &repo{files: map[string]bool{}, read: func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		return string(b), err
	}}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		r.files[filepath.ToSlash(rel)] = true
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
	return r
}

// TestReferencesResolve fails, naming file and line, for each reference to
// a .md file that is not in the repository and each cited section that is
// not a numbered heading of its document.
func TestReferencesResolve(t *testing.T) {
	r := worktree(t)
	probs, refs, secs := r.check()
	for _, p := range probs {
		t.Error(p)
	}
	t.Logf("checked %d references to .md files and %d section citations", refs, secs)
	if refs < 100 || secs < 100 {
		t.Errorf("found only %d references and %d section citations; the scanner has stopped seeing them", refs, secs)
	}
}

// TestCheckCatches runs the check on a made-up repository, so it is known
// to fail where it should.
func TestCheckCatches(t *testing.T) {
	files := map[string]string{
		"docs/api.md":    "# API\n## 1. Login\n### 1.2 Answer\n## 2. Jobs\n### 2.4 Upload\n",
		"docs/design.md": "# Design\n## 2. Settings\n",
		"pkg/a.go": "// ok (api.md §1.2), ok (design.md §2), ok api.md\n// §2.4 and 1.2.\n" +
			"// bad section (api.md §2.5)\n" +
			"// bad loose §3.1 after api.md\n" +
			"// bad range (api.md 1.2-1.7)\n" +
			"// gone " + "notes/contracts" + ".md\n" +
			"// outside ../shared/docs/api" + ".md\n" +
			"// a link https://example.com/x/README.md is not ours\n",
		"README.md":  "See docs/api.md and pkg/" + "missing" + ".md.\n",
		"lib/doc.go": "// Package lib follows docs/api.md, whose sections it cites.\npackage lib\n",
		"lib/b.go":   "// ok §2.4\n// bad §2.9\n",
		"other/c.go": "// no document named anywhere §2.4\n",
	}
	r := &repo{files: map[string]bool{}, read: func(name string) (string, error) {
		s, ok := files[name]
		if !ok {
			return "", os.ErrNotExist
		}
		return s, nil
	}}
	for f := range files {
		r.files[f] = true
	}
	probs, _, _ := r.check()
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{
		"README.md:1: cites pkg/" + "missing" + ".md, which is not in the repository (documents live in docs/)",
		"lib/b.go:2: cites section 2.9 of docs/api.md, which has no heading numbered 2.9",
		"other/c.go:1: cites §2.4 without naming a document earlier in the file",
		"pkg/a.go:3: cites section 2.5 of docs/api.md, which has no heading numbered 2.5",
		"pkg/a.go:4: cites section 3.1 of docs/api.md, which has no heading numbered 3.1",
		"pkg/a.go:5: cites section 1.7 of docs/api.md, which has no heading numbered 1.7",
		"pkg/a.go:6: cites notes/" + "contracts" + ".md, which is not in the repository (documents live in docs/)",
		"pkg/a.go:7: cites ../shared/docs/api.md, which is not in the repository (documents live in docs/)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
