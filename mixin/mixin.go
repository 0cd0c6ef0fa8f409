// Package mixin is framering's monitoring mixin: a Grafana dashboard
// (dashboards/framering.json) and Prometheus alerting rules
// (alerts/framering.yaml), as files to load into Grafana and Prometheus,
// and embedded here for programs and tests. mixin/README.md says how to
// use them; tests/ holds the rules' promtool unit tests.
package mixin

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

//go:embed dashboards/framering.json
var dashboard []byte

//go:embed alerts/framering.yaml
var alerts []byte

// Dashboard returns the Grafana dashboard JSON (a copy).
func Dashboard() []byte { return append([]byte(nil), dashboard...) }

// Alerts returns the Prometheus rules file of the alerts (a copy).
func Alerts() []byte { return append([]byte(nil), alerts...) }

// Query is one PromQL query of a dashboard.
type Query struct {
	// Panel is the panel's title, or "variable NAME" for a template
	// variable's query.
	Panel string
	// RefID is the target's refId within its panel.
	RefID string
	// Expr is the query as in the dashboard, Grafana variables included.
	// A variable's label_values(SELECTOR, LABEL) is rewritten as the
	// PromQL group by (LABEL) (SELECTOR), which returns the same label
	// values.
	Expr string
}

// dashboardJSON is the part of a Grafana dashboard Queries reads.
type dashboardJSON struct {
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panelJSON struct {
	Title   string      `json:"title"`
	Type    string      `json:"type"`
	Panels  []panelJSON `json:"panels"` // a collapsed row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// Queries returns every PromQL query of a Grafana dashboard: each panel
// target's expr (rows' nested panels included) and each query variable's
// query. It fails on a panel target without an expr.
func Queries(dash []byte) ([]Query, error) {
	var d dashboardJSON
	if err := json.Unmarshal(dash, &d); err != nil {
		return nil, fmt.Errorf("mixin: dashboard: %w", err)
	}
	var out []Query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				return nil, fmt.Errorf("mixin: variable %s: query is neither a string nor {query: ...}", v.Name)
			}
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			return nil, fmt.Errorf("mixin: variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, q.Query)
		}
		out = append(out, Query{Panel: "variable " + v.Name, RefID: v.Name, Expr: fmt.Sprintf("group by (%s) (%s)", m[2], m[1])})
	}
	var walk func(ps []panelJSON) error
	walk = func(ps []panelJSON) error {
		for _, p := range ps {
			if err := walk(p.Panels); err != nil {
				return err
			}
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				return fmt.Errorf("mixin: panel %q has no query", p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("mixin: panel %q target %s has no expr", p.Title, t.RefID)
				}
				out = append(out, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

var varRE = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)`)

// Expand replaces the Grafana variables in expr ($name, ${name},
// ${name:format}) by vars[name], as Grafana would for one chosen value,
// and fails on a variable vars lacks.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("mixin: no value for Grafana variables %v in %q", missing, expr)
	}
	return out, nil
}
