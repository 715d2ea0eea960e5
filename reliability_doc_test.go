package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/template"
)

// updateDoc rewrites docs/RELIABILITY.md from its template and figures.
var updateDoc = flag.Bool("update", false, "rewrite docs/RELIABILITY.md from docs/reliability/")

const (
	reliabilityDoc      = "docs/RELIABILITY.md"
	reliabilityTemplate = "docs/reliability/RELIABILITY.md.tmpl"
)

// TestReliabilityDoc renders docs/RELIABILITY.md from its template and the
// figures the harnesses wrote to docs/reliability/*.json, and fails when
// the committed doc differs: no figure in it is typed by hand. `make
// reliability-doc` (-update) rewrites it.
func TestReliabilityDoc(t *testing.T) {
	figures := map[string]any{}
	paths, err := filepath.Glob("docs/reliability/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // a seed is a uint64: exact, not a float
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		figures[strings.TrimSuffix(filepath.Base(p), ".json")] = v
	}
	tmpl, err := template.New(filepath.Base(reliabilityTemplate)).Funcs(template.FuncMap{
		"num":  formatNumber,
		"keys": sortedKeys,
		"join": func(sep string, v []any) string {
			s := make([]string, len(v))
			for i, x := range v {
				s[i] = fmt.Sprint(x)
			}
			return strings.Join(s, sep)
		},
		"div": func(a, b any) float64 { return toFloat(a) / toFloat(b) },
		"mul": func(a, b any) float64 { return toFloat(a) * toFloat(b) },
	}).Option("missingkey=error").ParseFiles(reliabilityTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, figures); err != nil {
		t.Fatal(err)
	}
	if *updateDoc {
		if err := os.WriteFile(reliabilityDoc, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(reliabilityDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, out.Bytes()) {
		t.Fatalf("%s is not what its template and figures give: run make reliability-doc", reliabilityDoc)
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return math.NaN()
		}
		return f
	case float64:
		return x
	case int:
		return float64(x)
	}
	return math.NaN()
}

// formatNumber prints a JSON number with groups of thousands: an
// integer as it is (1,234,567), anything else with one decimal (2,547.7).
func formatNumber(v any) string {
	if n, ok := v.(json.Number); ok && !strings.ContainsAny(n.String(), ".eE") {
		s := n.String()
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		if neg {
			s = "-" + s
		}
		return s
	}
	f := toFloat(v)
	s := fmt.Sprintf("%.1f", math.Abs(f))
	if f == math.Trunc(f) {
		s = fmt.Sprintf("%d", int64(math.Abs(f)))
	}
	whole, frac, _ := strings.Cut(s, ".")
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	if frac != "" {
		whole += "." + frac
	}
	if f < 0 {
		whole = "-" + whole
	}
	return whole
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
