#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus rules against docs/metrics.md.

Usage: python3 deploy/check-dashboard.py [--promtool PATH]
       (from anywhere; exit 1 on an error)

The metric names and labels in docs/metrics.md are the contract between
the detector and what is deployed around it. This checks that:

- deploy/grafana/exfilguard.json is valid JSON with uid "exfilguard", the
  `datasource`, `job` and `instance` variables, unique panel ids, panels
  inside the 24-column grid and not overlapping, and every query on the
  `${datasource}` variable;
- every metric a dashboard query, a rule or a rule test names is in
  docs/metrics.md (or is Prometheus's own `up`/`ALERTS`, or a Go runtime or
  process metric), histograms only by their _bucket/_sum/_count series,
  rate() and increase() only of counters and histogram series;
- every label a dashboard query matches on, groups by or shows in a legend
  is one its metrics have (or job, instance, le);
- every dashboard selector is restricted to job="$job" and
  instance=~"$instance".

With a promtool (--promtool, or $EXFILGUARD_PROMTOOL; `bash .ci/promtool.sh`
prints one), every dashboard query is also parsed by Prometheus itself,
its Grafana variables replaced by sample values.

Metrics in docs/metrics.md that the dashboard does not show are listed,
not failed.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "metrics.md")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "exfilguard.json")
RULES = [os.path.join(ROOT, "deploy", "prometheus", f) for f in ("rules.yml", "rules_test.yml")]

# Labels every scraped series has, and those of histogram buckets.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes, and the client library's runtime collectors.
EXTERNAL = {"up": set(), "ALERTS": {"alertname", "alertstate", "severity", "sink", "type"}}
EXTERNAL_PREFIXES = ("go_", "process_")
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "count_values", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "time",
    "timestamp", "vector", "scalar", "absent", "absent_over_time", "changes", "resets", "label_replace",
    "label_join", "clamp_min", "clamp_max", "abs", "max_over_time", "min_over_time", "avg_over_time",
    "sum_over_time", "count_over_time", "last_over_time", "present_over_time", "predict_linear", "round",
    "ceil", "floor", "sort", "sort_desc", "inf", "nan", "Inf", "NaN",
}

errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


def load_contract():
    """name -> (type, set of label names) from the table in docs/metrics.md."""
    contract = {}
    row = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|")
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = row.match(line)
            if not m:
                continue
            name, typ, labels = m.group(1), m.group(2), m.group(3)
            # `store` (`state`, `outbox`): the parenthesised part lists values.
            labels = re.sub(r"\([^)]*\)", "", labels)
            contract[name] = (typ, set(re.findall(r"`([a-z_]+)`", labels)))
    if not contract:
        sys.exit(f"{DOC}: no metric table found")
    return contract


def resolve(name, contract):
    """(documented base name, series kind) for a series name, or None."""
    if name in contract:
        return name, contract[name][0]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and contract.get(base, ("",))[0] == "histogram":
            return base, "histogram" + suffix
    return None


def labels_of(name, contract):
    if name in EXTERNAL:
        return EXTERNAL[name] | TARGET_LABELS
    r = resolve(name, contract)
    if r is None:
        return None
    labels = set(contract[r[0]][1]) | TARGET_LABELS
    if r[1] == "histogram_bucket":
        labels.add("le")
    return labels


def strip_strings(expr):
    """The expression with string literals emptied (label values may look like names)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_names(where, expr, contract, used):
    """Checks each series name in expr; returns the names."""
    code = strip_strings(expr)
    # Not names: durations ([5m]), template variables ($job), matchers
    # ({...}) and label lists (by (...), on (...), ...).
    code = re.sub(r"\[[^\]]*\]", "", code)
    code = re.sub(r"\$\{?\w+\}?", "", code)
    code = re.sub(r"\{[^{}]*\}", "{}", code)
    code = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", code)
    names = []
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_][a-zA-Z0-9_:]*)(?![\w:])", code):
        tok = m.group(1)
        if tok in PROMQL_WORDS or code[m.end():].lstrip().startswith("("):
            continue  # a keyword or a function
        if ":" in tok:  # a recording rule's name
            continue
        if tok in EXTERNAL or tok.startswith(EXTERNAL_PREFIXES):
            names.append(tok)
            continue
        r = resolve(tok, contract)
        if r is None:
            err(where, f"metric {tok!r} is not in docs/metrics.md")
            continue
        base, kind = r
        used.add(base)
        if kind == "histogram":
            err(where, f"{tok} is a histogram: query its _bucket, _sum or _count series")
        names.append(tok)
    for m in re.finditer(r"\b(rate|irate|increase)\s*\(\s*([a-zA-Z_][\w]*)", code):
        r = resolve(m.group(2), contract)
        if r and r[1] == "gauge":
            err(where, f"{m.group(1)}() of the gauge {m.group(2)}")
    return names


def check_labels(where, expr, legend, names, contract):
    allowed = set(TARGET_LABELS)
    for n in names:
        ls = labels_of(n, contract)
        if ls is not None:
            allowed |= ls
    if any(n.startswith(EXTERNAL_PREFIXES) for n in names):
        return  # runtime collectors' labels are not in the contract
    code = strip_strings(expr)
    used = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", code):
        used |= {l.strip() for l in m.group(1).split(",") if l.strip()}
    for m in re.finditer(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", expr):
        used.add(m.group(1))
    for m in re.finditer(r"\{\{\s*\.?\$?(?:labels\.)?([a-zA-Z_]\w*)\s*\}\}", legend or ""):
        used.add(m.group(1))
    for l in sorted(used - allowed - {"__name__"}):
        err(where, f"label {l!r} is not a label of {', '.join(sorted(set(names))) or 'any metric named'}")


def check_selectors(where, expr):
    """Every selector of a scraped series is restricted to the chosen job and instances."""
    for m in re.finditer(r"(?<![\w:\"])((?:exfilguard|go|process)_\w+|up)(?![\w:(])\s*(\{[^}]*\})?", expr):
        sel = m.group(2) or ""
        if 'job="$job"' not in sel or 'instance=~"$instance"' not in sel:
            err(where, f"selector of {m.group(1)} is not restricted to job=\"$job\", instance=~\"$instance\": {m.group(0)}")


# Grafana's variables, replaced by values Prometheus can parse.
GRAFANA_VARS = [("$__rate_interval", "1m"), ("$__interval", "5m"), ("$job", "exfilguard"), ("$instance", ".+")]


def check_promql(promtool, exprs):
    """Parses every (where, expr) with promtool check rules."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n")
            for i, (where, expr) in enumerate(exprs):
                for var, value in GRAFANA_VARS:
                    expr = expr.replace(var, value)
                # JSON strings are YAML strings.
                f.write(f"  - name: {json.dumps(where)}\n    rules:\n")
                f.write(f"      - record: dashboard:query:{i}\n        expr: {json.dumps(expr)}\n")
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            err("promtool check rules (dashboard queries)", (r.stdout + r.stderr).strip())


def check_dashboard(contract, exprs):
    try:
        with open(DASHBOARD, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        err(os.path.relpath(DASHBOARD, ROOT), str(e))
        return set()
    where = "exfilguard.json"
    if d.get("uid") != "exfilguard":
        err(where, f"uid is {d.get('uid')!r}, want 'exfilguard'")
    if d.get("title") != "Exfilguard":
        err(where, f"title is {d.get('title')!r}, want 'Exfilguard'")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        err(where, f"schemaVersion {d.get('schemaVersion')!r}: want 36 or later")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        err(where, "no `datasource` variable of type datasource for prometheus")
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or v.get("datasource", {}).get("uid") != "${datasource}":
            err(where, f"no `{name}` query variable on ${{datasource}}")

    used = set()
    ids = set()
    cells = {}
    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # a collapsed row's
    for p in panels:
        pw = f"{where} panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            err(pw, "duplicate panel id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        x, y, w, h = (g.get(k) for k in ("x", "y", "w", "h"))
        if None in (x, y, w, h) or x < 0 or w < 1 or x + w > 24 or h < 1:
            err(pw, f"gridPos {g} outside the 24-column grid")
        else:
            for cx in range(x, x + w):
                for cy in range(y, y + h):
                    if (cx, cy) in cells:
                        err(pw, f"overlaps panel {cells[(cx, cy)]}")
                        break
                    cells[(cx, cy)] = p.get("id")
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            err(pw, "no queries")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            err(pw, "panel data source is not ${datasource}")
        for t in p.get("targets", []):
            tw = f"{pw} query {t.get('refId')}"
            if t.get("datasource", {}).get("uid") != "${datasource}":
                err(tw, "data source is not ${datasource}")
            expr = t.get("expr", "")
            exprs.append((tw, expr))
            names = check_names(tw, expr, contract, used)
            check_labels(tw, expr, t.get("legendFormat"), names, contract)
            check_selectors(tw, expr)
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            aw = f"{where} annotation {a.get('name')!r}"
            exprs.append((aw, a["expr"]))
            names = check_names(aw, a["expr"], contract, used)
            check_labels(aw, a["expr"], a.get("textFormat", "") + a.get("titleFormat", ""), names, contract)
    return used


def check_rules(contract):
    used = set()
    for path in RULES:
        if not os.path.exists(path):
            err(path, "missing")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for i, line in enumerate(text.splitlines(), 1):
            for m in re.finditer(r"(?<![\w:#])(exfilguard_[a-z0-9_]+)", line):
                if resolve(m.group(1), contract) is None:
                    err(f"{os.path.relpath(path, ROOT)}:{i}", f"metric {m.group(1)!r} is not in docs/metrics.md")
                else:
                    used.add(resolve(m.group(1), contract)[0])
    return used


def main():
    args = sys.argv[1:]
    promtool = os.environ.get("EXFILGUARD_PROMTOOL", "")
    if args[:1] == ["--promtool"] and len(args) == 2:
        promtool = args[1]
    elif args:
        sys.exit(__doc__)
    contract = load_contract()
    exprs = []
    shown = check_dashboard(contract, exprs)
    check_rules(contract)
    if promtool:
        check_promql(promtool, exprs)
    else:
        print("no promtool (--promtool or $EXFILGUARD_PROMTOOL): queries not parsed")
    for e in errors:
        print("error:", e)
    unshown = sorted(set(contract) - shown)
    if unshown:
        print("not on the dashboard:", ", ".join(unshown))
    print(f"{len(contract)} metrics in docs/metrics.md, {len(shown)} on the dashboard; {len(errors)} errors")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
