// Package docs holds kimia's documentation. Its test keeps the documents
// true to the code: the error messages quoted in them must still be
// printed by kimia, and the commands shown must use flags that exist.
package docs

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/flags"
)

// root is the repository, seen from this package's directory.
const root = ".."

// markdownFiles are the documents checked: the README and docs/*.md.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

// shown names a document as the repository does: docs/x.md, not ../docs/x.md.
func shown(path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// fence is one fenced code block of a Markdown file.
type fence struct {
	info  string // the first word of the info string, lower case
	line  int    // line number of the first content line
	lines []string
}

var fenceOpen = regexp.MustCompile("^(```+|~~~+)(.*)$")

// fences returns the fenced code blocks of a Markdown file, with the
// fence's own indentation (blocks inside list items) removed.
func fences(t *testing.T, path string) []fence {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	var cur *fence
	var marker string
	indent := 0
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(l, " ")
		if cur == nil {
			if m := fenceOpen.FindStringSubmatch(trimmed); m != nil {
				info, _, _ := strings.Cut(strings.TrimSpace(m[2]), " ")
				cur = &fence{info: strings.ToLower(info), line: i + 2}
				marker, indent = m[1], len(l)-len(trimmed)
			}
			continue
		}
		if strings.HasPrefix(trimmed, marker) && strings.TrimSpace(strings.TrimLeft(trimmed, marker[:1])) == "" {
			out = append(out, *cur)
			cur = nil
			continue
		}
		n := min(indent, len(l)-len(trimmed))
		cur.lines = append(cur.lines, l[n:])
	}
	return out
}

// Error messages. Convention: a fenced block with the info string `error` holds message
// fragments, one per line, as kimia prints them after "kimia: error: ".
// "..." stands for what differs from run to run (a path, a host, the
// underlying error) or for a part left out. The pieces between "..."
// must occur, in order, in one string of kimia's Go source: a literal, a
// concatenation of literals (other operands count as "..."), or a usage
// error usagef("flag", "format"), which kimia prints as "--flag: format".

// TestQuotedMessagesExist fails when a documented message is no longer
// in the code, so that docs/troubleshooting.md cannot drift from what
// users see.
func TestQuotedMessagesExist(t *testing.T) {
	msgs := sourceMessages(t)
	perFile := map[string]int{}
	for _, path := range markdownFiles(t) {
		for _, f := range fences(t, path) {
			if f.info != "error" {
				continue
			}
			for i, frag := range f.lines {
				frag = strings.TrimSpace(frag)
				if frag == "" {
					continue
				}
				perFile[filepath.Base(path)]++
				if problem := checkFragment(frag, msgs); problem != "" {
					t.Errorf("%s:%d: message fragment %q: %s.\n"+
						"Quote the message as the code words it (\"...\" for the parts filled in at run time), "+
						"or remove the entry if kimia no longer prints it.",
						shown(path), f.line+i, frag, problem)
				}
			}
		}
	}
	t.Logf("checked message fragments per file: %v", perFile)
	if perFile["troubleshooting.md"] == 0 {
		t.Errorf("docs/troubleshooting.md has no ```error blocks: the messages it quotes are no longer checked")
	}
}

// checkFragment says why frag matches none of msgs, or "".
func checkFragment(frag string, msgs []string) string {
	pieces := fragmentPieces(frag)
	longest := 0
	for _, p := range pieces {
		longest = max(longest, len(p))
	}
	if longest < 10 {
		return "too short to identify a message (give at least 10 characters between \"...\")"
	}
	for _, m := range msgs {
		if piecesIn(pieces, m) {
			return ""
		}
	}
	var missing []string
	for _, p := range pieces {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, p) }) {
			missing = append(missing, strconv.Quote(p))
		}
	}
	if len(missing) > 0 {
		return "not in kimia's non-test Go source: " + strings.Join(missing, ", ") + " occurs nowhere"
	}
	return "each piece occurs in the source, but not all in one message in this order"
}

// fragmentPieces splits a fragment at "...".
func fragmentPieces(frag string) []string {
	var out []string
	for _, p := range strings.Split(frag, "...") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// piecesIn reports whether pieces occur in s in this order, without
// overlapping. The leftmost match of each piece is never worse than a
// later one, so one pass decides.
func piecesIn(pieces []string, s string) bool {
	for _, p := range pieces {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// sourceMessages returns the strings of the non-test Go files of every
// package of this module that cmd/kimia or cmd/kimia-bud imports,
// directly or not: what the binaries can print. Files of every build tag
// are read (both SBOM variants print messages).
func sourceMessages(t *testing.T) []string {
	t.Helper()
	module := modulePath(t)
	fset := token.NewFileSet()
	fr := newFieldRenderer(t, fset)
	var msgs []string
	seen := map[string]bool{}
	queue := []string{"cmd/kimia", "cmd/kimia-bud"}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files found (%v)", dir, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if rel, ok := strings.CutPrefix(p, module+"/"); ok {
					queue = append(queue, rel)
				}
			}
			msgs = append(msgs, stringsOf(f)...)
			msgs = append(msgs, fr.messages(f)...)
		}
	}
	return msgs
}

// fieldRenderer renders the messages engines build with request fields
// (engine.FieldCacheRepo in a format's arguments, or its String() in a
// concatenation) as users see them: with each field's flag, once per
// binary, since the engine options' flag differs.
type fieldRenderer struct {
	fields map[string]engine.Field // identifier → field
	names  []map[engine.Field]string
}

func newFieldRenderer(t *testing.T, fset *token.FileSet) *fieldRenderer {
	t.Helper()
	f, err := parser.ParseFile(fset, filepath.Join(root, "engine", "field.go"), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fieldRenderer{
		fields: map[string]engine.Field{},
		names:  []map[engine.Field]string{flags.FieldNames("buildkit-opt"), flags.FieldNames("buildah-opt")},
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && len(vs.Values) == 1 {
			if v, ok := literal(vs.Values[0]); ok && strings.HasPrefix(vs.Names[0].Name, "Field") {
				fr.fields[vs.Names[0].Name] = engine.Field(v)
			}
		}
		return true
	})
	if len(fr.fields) != len(engine.Fields) {
		t.Fatalf("engine/field.go: found %d field constants, engine.Fields has %d", len(fr.fields), len(engine.Fields))
	}
	return fr
}

// field recognizes engine.FieldX, FieldX and their String().
func (fr *fieldRenderer) field(e ast.Expr) (engine.Field, bool) {
	e = ast.Unparen(e)
	if c, ok := e.(*ast.CallExpr); ok && len(c.Args) == 0 {
		if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "String" {
			e = sel.X
		}
	}
	var id string
	switch e := e.(type) {
	case *ast.Ident:
		id = e.Name
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "engine" {
			id = e.Sel.Name
		}
	}
	f, ok := fr.fields[id]
	return f, ok
}

// messages returns f's messages that name a field, rendered.
func (fr *fieldRenderer) messages(f *ast.File) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			for _, names := range fr.names {
				if s, ok := fr.concatenation(n, names); ok {
					out = append(out, s)
				}
			}
		case *ast.CallExpr:
			for i, a := range n.Args {
				if i > 1 {
					break
				}
				format, ok := concatenation(a)
				if !ok || !strings.Contains(format, "%") {
					continue
				}
				for _, names := range fr.names {
					if s, ok := fr.format(format, n.Args[i+1:], names); ok {
						out = append(out, s)
					}
				}
				break
			}
		}
		return true
	})
	return out
}

// concatenation is like the plain one, with fields named; ok only when a
// field is among the operands.
func (fr *fieldRenderer) concatenation(e *ast.BinaryExpr, names map[engine.Field]string) (string, bool) {
	if e.Op != token.ADD {
		return "", false
	}
	var parts []ast.Expr
	var flatten func(ast.Expr)
	flatten = func(e ast.Expr) {
		if b, ok := ast.Unparen(e).(*ast.BinaryExpr); ok && b.Op == token.ADD {
			flatten(b.X)
			flatten(b.Y)
			return
		}
		parts = append(parts, e)
	}
	flatten(e)
	var b strings.Builder
	named := false
	for _, p := range parts {
		if s, ok := literal(p); ok {
			b.WriteString(s)
		} else if f, ok := fr.field(p); ok {
			b.WriteString(names[f])
			named = true
		} else {
			b.WriteString(hole)
		}
	}
	return b.String(), named
}

// format substitutes the verbs of format whose argument is a field; ok
// only when one is.
func (fr *fieldRenderer) format(format string, args []ast.Expr, names map[engine.Field]string) (string, bool) {
	var b strings.Builder
	named := false
	arg := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			b.WriteByte(format[i])
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			b.WriteString(format[i:])
			break
		}
		verb := format[i : j+1]
		if format[j] == '%' {
			b.WriteString(verb)
			i = j
			continue
		}
		if arg < len(args) {
			if f, ok := fr.field(args[arg]); ok {
				verb = names[f]
				named = true
			}
		}
		b.WriteString(verb)
		arg++
		i = j
	}
	return b.String(), named
}

func modulePath(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m, ok := strings.CutPrefix(s.Text(), "module "); ok {
			return strings.TrimSpace(m)
		}
	}
	t.Fatal("go.mod names no module")
	return ""
}

// hole stands for a non-constant operand of a concatenation; no
// fragment piece contains it.
const hole = "\x00"

// stringsOf returns the string literals of f, each concatenation of
// strings as one string, and each usagef call as the message it makes.
func stringsOf(f *ast.File) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, ok := literal(n); ok {
				out = append(out, s)
			}
		case *ast.BinaryExpr:
			if s, ok := concatenation(n); ok {
				out = append(out, s)
			}
		case *ast.CallExpr:
			// flags/values.go: usagef(flag, format, ...) prints "--flag: format".
			if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "usagef" && len(n.Args) >= 2 {
				flag, ok := literal(n.Args[0])
				if !ok {
					flag = hole
				}
				if format, ok := concatenation(n.Args[1]); ok {
					out = append(out, "--"+flag+": "+format)
				}
			}
		}
		return true
	})
	return out
}

func literal(e ast.Expr) (string, bool) {
	lit, ok := ast.Unparen(e).(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// concatenation renders a + b + ... with at least one string literal,
// the other operands as holes.
func concatenation(e ast.Expr) (string, bool) {
	var parts []ast.Expr
	var flatten func(ast.Expr)
	flatten = func(e ast.Expr) {
		if b, ok := ast.Unparen(e).(*ast.BinaryExpr); ok && b.Op == token.ADD {
			flatten(b.X)
			flatten(b.Y)
			return
		}
		parts = append(parts, e)
	}
	flatten(e)
	var b strings.Builder
	found := false
	for _, p := range parts {
		if s, ok := literal(p); ok {
			b.WriteString(s)
			found = true
		} else {
			b.WriteString(hole)
		}
	}
	return b.String(), found
}

func TestFragmentMatching(t *testing.T) {
	msgs := []string{
		"--cache-dir %q is in use by %s: wait for it to finish",
		"--" + hole + ": %q is not native or overlay",
		"interrupted by " + hole,
	}
	for _, tc := range []struct {
		name, frag string
		ok         bool
	}{
		{"a constant part matches", "wait for it to finish", true},
		{"pieces around run-time values match in order", "--cache-dir ... is in use by ...: wait for it", true},
		{"pieces out of order do not match", "wait for it to finish...--cache-dir", false},
		{"a piece spanning a hole does not match", "interrupted by terminated", false},
		{"a word the code does not have does not match", "is not native, overlay", false},
		{"a fragment of punctuation is too short", "...: ...", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFragment(tc.frag, msgs) == ""; got != tc.ok {
				t.Errorf("checkFragment(%q) matched = %v, want %v", tc.frag, got, tc.ok)
			}
		})
	}
}

// Commands. Every command line in ```sh, ```bash, ```shell and ```console blocks
// (in console blocks, the lines after a "$ " prompt) that runs kimia or
// kimia-bud is checked against that binary's real flags: the urfave/cli
// app flags.App builds from the flags.Binary in cmd/<binary>/main.go.

var shellInfos = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// TestDocumentedCommandsUseRealFlags fails when a document shows a
// command with a flag or subcommand the binary does not have.
func TestDocumentedCommandsUseRealFlags(t *testing.T) {
	apps := binaries(t)
	runs := 0
	for _, path := range markdownFiles(t) {
		for _, f := range fences(t, path) {
			if !shellInfos[f.info] {
				continue
			}
			for _, c := range commandLines(f) {
				for _, inv := range invocations(c.text) {
					runs++
					for _, p := range checkInvocation(apps, inv) {
						t.Errorf("%s:%d: %s\n\t%s\n"+
							"Fix the command in the document (flags/defs.go defines the flags; `make docs` lists them in docs/cli-reference.md).",
							shown(path), c.line, p, c.text)
					}
				}
			}
		}
	}
	t.Logf("checked %d kimia and kimia-bud commands", runs)
	if runs == 0 {
		t.Errorf("no kimia or kimia-bud command found in the documents' shell blocks: the command check has nothing to check")
	}
}

// binaries builds each binary's app from its description (flags.Binaries,
// which the mains use), so the engine-only flag of each is the real one.
func binaries(t *testing.T) map[string]*cli.App {
	t.Helper()
	apps := map[string]*cli.App{}
	for _, b := range flags.Binaries {
		apps[b.Name] = flags.App(b) // the engine is never run here
	}
	if len(apps) != 2 {
		t.Fatalf("flags.Binaries describes %d binaries, want kimia and kimia-bud", len(apps))
	}
	return apps
}

type commandLine struct {
	line int
	text string
}

// commandLines joins backslash continuations; in console blocks only the
// commands after a "$ " prompt count.
func commandLines(f fence) []commandLine {
	var out []commandLine
	var cur *commandLine
	for i, l := range f.lines {
		if cur == nil {
			if f.info == "console" {
				rest, ok := strings.CutPrefix(strings.TrimSpace(l), "$ ")
				if !ok {
					continue
				}
				l = rest
			}
			cur = &commandLine{line: f.line + i}
		}
		text, more := strings.CutSuffix(strings.TrimRight(l, " \t"), `\`)
		cur.text += text
		if more {
			cur.text += " "
			continue
		}
		out = append(out, *cur)
		cur = nil
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// invocation is one run of kimia or kimia-bud: the binary and its
// arguments. loose is set when the line could not be split as sh would,
// so only the flag names are known.
type invocation struct {
	binary string
	args   []string
	loose  bool
}

type word struct {
	text string
	op   bool // |, &, ;, (, ), <, >
}

// shellWords splits a line as sh does, as far as documents need: quotes,
// backslashes, comments and the operators that end a command. ok is false
// for unbalanced quotes.
func shellWords(line string) (out []word, ok bool) {
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, word{text: w.String()})
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				return nil, false
			}
			w.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '\\' && i+1 < len(line):
			w.WriteByte(line[i+1])
			inWord = true
			i++
		case c == '#' && !inWord:
			flush()
			return out, true
		case c == ' ' || c == '\t':
			flush()
		case strings.IndexByte("|&;()<>", c) >= 0:
			// "2>file": the digits name a file descriptor, not an argument.
			if (c == '<' || c == '>') && inWord && strings.Trim(w.String(), "0123456789") == "" {
				w.Reset()
				inWord = false
			}
			flush()
			out = append(out, word{text: string(c), op: true})
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return out, true
}

var (
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	wrappers   = map[string]bool{"sudo": true, "env": true, "exec": true, "time": true, "command": true, "nohup": true}
	// looseRun finds kimia or kimia-bud as a command in a line that
	// shellWords cannot split.
	looseRun  = regexp.MustCompile(`(?:^|[\s;|&(])(?:\S*/)?(kimia(?:-bud)?)\s+(.*)$`)
	looseFlag = regexp.MustCompile(`(?:^|\s)(--?[A-Za-z][-A-Za-z0-9]*)`)
)

// invocations finds the runs of kimia and kimia-bud in a command line.
func invocations(line string) []invocation {
	words, ok := shellWords(line)
	if !ok {
		m := looseRun.FindStringSubmatch(line)
		if m == nil {
			return nil
		}
		inv := invocation{binary: m[1], loose: true}
		for _, f := range looseFlag.FindAllStringSubmatch(m[2], -1) {
			inv.args = append(inv.args, f[1])
		}
		return []invocation{inv}
	}
	var out []invocation
	var cmd []string
	end := func() {
		// Skip "VAR=value", "sudo", "env -i" and the like.
		wrapped := false
		for len(cmd) > 0 && (assignment.MatchString(cmd[0]) || wrappers[cmd[0]] || (wrapped && strings.HasPrefix(cmd[0], "-"))) {
			wrapped = wrapped || wrappers[cmd[0]]
			cmd = cmd[1:]
		}
		if len(cmd) > 0 {
			if b := filepath.Base(cmd[0]); b == "kimia" || b == "kimia-bud" {
				out = append(out, invocation{binary: b, args: cmd[1:]})
			}
		}
		cmd = nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w.op && (w.text == "<" || w.text == ">"):
			if i+1 < len(words) && !words[i+1].op {
				i++ // the redirection's file
			}
		case w.op:
			end()
		default:
			cmd = append(cmd, w.text)
		}
	}
	end()
	return out
}

// checkInvocation returns what is wrong with one run: unknown
// subcommands and flags, flags of the other binary, arguments the binary
// would refuse.
func checkInvocation(apps map[string]*cli.App, inv invocation) []string {
	app := apps[inv.binary]
	var problems []string
	args := inv.args
	fl, where := app.Flags, inv.binary
	extra := map[string]bool{"help": true, "h": true, "version": true}
	if !inv.loose && len(args) > 0 && !strings.HasPrefix(args[0], "-") && !placeholder(args[0]) {
		cmd := app.Command(args[0])
		if cmd == nil {
			var names []string
			for _, c := range app.Commands {
				names = append(names, c.Name)
			}
			return []string{fmt.Sprintf("%s has no subcommand %q (its subcommands: %s; everything else is given with flags)", inv.binary, args[0], strings.Join(names, ", "))}
		}
		fl, where = cmd.Flags, inv.binary+" "+cmd.Name
		extra = map[string]bool{"help": true, "h": true}
		args = args[1:]
	}
	takesValue, known := flags.FlagKinds(fl)
	if inv.loose {
		// Without the words' structure, a subcommand's flags are allowed too.
		for _, c := range app.Commands {
			_, k := flags.FlagKinds(c.Flags)
			for n := range k {
				known[n] = true
			}
		}
	}
	for n := range extra {
		known[n] = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if inner, ok := strings.CutPrefix(a, "["); ok && strings.HasPrefix(inner, "-") {
			a = strings.TrimRight(inner, "]") // an optional flag in a synopsis: [--json]
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			if !inv.loose && !placeholder(a) {
				problems = append(problems, fmt.Sprintf("%s takes no argument %q: give values with --flag=VALUE", where, a))
			}
			continue
		}
		dashes := len(a) - len(strings.TrimLeft(a, "-"))
		name, _, hasValue := strings.Cut(a[dashes:], "=")
		switch {
		case !known[name]:
			msg := fmt.Sprintf("%s has no flag %s", where, a[:dashes]+name)
			for other, oapp := range apps {
				if _, k := flags.FlagKinds(oapp.Flags); other != inv.binary && k[name] {
					msg += fmt.Sprintf(" (it is a flag of %s only)", other)
				}
			}
			problems = append(problems, msg)
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++ // most likely its value; one problem is enough
			}
			continue
		case dashes == 1 && len(name) > 1:
			problems = append(problems, fmt.Sprintf("%s: write long flags with two dashes (--%s)", a, name))
		}
		if takesValue[name] && !hasValue && !inv.loose {
			if i+1 >= len(args) || (strings.HasPrefix(args[i+1], "-") && len(args[i+1]) > 1 && !isNumber(args[i+1])) {
				problems = append(problems, fmt.Sprintf("%s needs a value: write %s=VALUE", a, a))
				continue
			}
			i++ // the value
		}
	}
	return problems
}

// placeholder reports whether a word stands for something in a synopsis
// rather than being typed: [flags], <dir>, ....
func placeholder(w string) bool {
	return strings.HasPrefix(w, "[") || strings.HasPrefix(w, "<") || strings.Contains(w, "...")
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func TestCommandChecker(t *testing.T) {
	apps := binaries(t)
	for _, tc := range []struct {
		name, line string
		problems   int
	}{
		{"a build with real flags passes", "kimia --context=. -f Dockerfile --destination registry/app:v1 --no-push", 0},
		{"kimia-bud's pass-through flag passes on kimia-bud", "kimia-bud --buildah-opt isolation=chroot --no-push", 0},
		{"kimia-bud's pass-through flag fails on kimia", "kimia --buildah-opt isolation=chroot --no-push", 1},
		{"kimia's pass-through flag fails on kimia-bud", "kimia-bud --buildkit-opt build-arg:A=b --no-push", 1},
		{"an unknown flag fails", "kimia --no-push --cache-repository=r/c", 1},
		{"a subcommand with its own flag passes", "kimia check --platform=linux/arm64 --json", 0},
		{"version with --json passes", "kimia version --json", 0},
		{"a misspelt subcommand fails", "kimia chek", 1},
		{"--json on the build fails", "kimia --json --no-push", 1},
		{"a stray argument fails", "kimia --no-push Dockerfile", 1},
		{"a value flag before another flag fails", "kimia --destination --no-push", 1},
		{"a long flag with one dash fails", "kimia -context=. --no-push", 1},
		{"commands around kimia are not checked", "FOO=1 sudo bin/kimia --no-push 2>err.txt | tee out --bogus && echo --also-bogus", 0},
		{"a comment is not checked", "kimia --no-push   # --not-a-flag", 0},
		{"an optional flag in a synopsis is checked", "kimia version [--jsn]", 1},
		{"a line with unbalanced quotes is still checked for flag names", `kimia --build-arg "A=b --nope`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			invs := invocations(tc.line)
			if len(invs) == 0 {
				t.Fatalf("no kimia invocation found in %q", tc.line)
			}
			for _, inv := range invs {
				got = append(got, checkInvocation(apps, inv)...)
			}
			if len(got) != tc.problems {
				t.Errorf("%q: got %d problems %q, want %d", tc.line, len(got), got, tc.problems)
			}
		})
	}
}
