#!/usr/bin/env python3
"""Check riskgate's Grafana dashboard and Prometheus alerts against real metrics.

    python3 deploy/check.py --metrics metrics.txt \
        --dashboard deploy/grafana/riskgate.json \
        --alerts deploy/prometheus/alerts.yml

metrics.txt is the text of a running server's /metrics. The check fails (exit
1, every problem listed) when the dashboard is not valid JSON or lacks its
structure, when an alert rule lacks a name, an expression, a severity or a
summary, or when any expression references a metric name that the server does
not expose. A name counts as exposed when a sample carries it, or when a
`# TYPE` line declares its family (a counter declares NAME_total, a histogram
NAME_bucket, NAME_sum and NAME_count). prometheus-client prints no TYPE line
for a labelled family before its first sample, so the caller should exercise
every family first (tests/deploy.rs does).

Standard library only; PyYAML is used to cross-check the alerts file when it
is installed.
"""

import argparse
import json
import re
import sys

PREFIX = "riskgate_"
METRIC_RE = re.compile(r"\b(" + PREFIX + r"[A-Za-z0-9_:]*)")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def exposed_names(text, samples_only=False):
    """Every metric name a /metrics text exposes (samples and TYPE lines;
    with samples_only, samples alone)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if samples_only:
                continue
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                family, kind = parts[2], parts[3]
                if kind == "counter":
                    names.update({family + "_total", family + "_created"})
                elif kind == "histogram":
                    names.update(family + s for s in ("_bucket", "_sum", "_count", "_created"))
                elif kind == "summary":
                    names.update({family, family + "_sum", family + "_count"})
                else:
                    names.add(family)
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)", line)
        if m:
            names.add(m.group(1))
    return names


def referenced(expr):
    """The riskgate metric names an expression references (string literals,
    such as label values, are ignored)."""
    return set(METRIC_RE.findall(STRING_RE.sub('""', expr)))


def dashboard_exprs(path, problems):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: not valid JSON: {e}")
        return []
    if not isinstance(dash, dict) or not isinstance(dash.get("panels"), list):
        problems.append(f"{path}: no `panels` list")
        return []
    if not dash.get("title") or not dash.get("uid"):
        problems.append(f"{path}: a dashboard needs `title` and `uid`")
    exprs = []
    ids = set()

    def walk(panels):
        for p in panels:
            pid = p.get("id")
            if pid in ids:
                problems.append(f"{path}: panel id {pid} is used twice")
            ids.add(pid)
            title = p.get("title", f"panel {pid}")
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            if "gridPos" not in p:
                problems.append(f"{path}: panel `{title}` has no gridPos")
            targets = p.get("targets") or []
            if not targets:
                problems.append(f"{path}: panel `{title}` has no query")
            for t in targets:
                e = t.get("expr", "")
                if not e.strip():
                    problems.append(f"{path}: panel `{title}` has an empty expr")
                exprs.append((f"{path}: panel `{title}`", e))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if v.get("type") == "query" and isinstance(q, str):
            exprs.append((f"{path}: variable `{v.get('name')}`", q))
    return exprs


def parse_alerts(text):
    """A minimal reader for the alerts file's shape: `- alert: NAME` items with
    `expr:` (inline or a `|`/`>` block), `for:`, `labels:` and `annotations:`
    mappings. Returns a list of dicts."""
    rules = []
    lines = text.splitlines()
    i = 0
    current = None
    section = None
    section_indent = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip(" "))
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        m = re.match(r"-\s+alert:\s*(.*)$", stripped)
        if m:
            current = {"alert": m.group(1).strip().strip("\"'"), "labels": {}, "annotations": {}}
            rules.append(current)
            section = None
            continue
        if re.match(r"-\s+record:", stripped) or re.match(r"-\s+name:", stripped):
            current = None
            section = None
            continue
        if current is None:
            continue
        if section and indent > section_indent:
            k, _, v = stripped.partition(":")
            current[section][k.strip()] = v.strip().strip("\"'")
            continue
        section = None
        k, _, v = stripped.partition(":")
        k, v = k.strip(), v.strip()
        if k in ("labels", "annotations") and not v:
            section, section_indent = k, indent
        elif k == "expr":
            if v in ("|", "|-", "|+", ">", ">-", ">+"):
                block = []
                while i < len(lines):
                    nxt = lines[i]
                    n_indent = len(nxt) - len(nxt.lstrip(" "))
                    if nxt.strip() and n_indent <= indent:
                        break
                    block.append(nxt.strip())
                    i += 1
                current["expr"] = "\n".join(block).strip()
            else:
                current["expr"] = v.strip("\"'")
        elif k == "for":
            current["for"] = v
    return rules


def alert_exprs(path, problems):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        problems.append(f"{path}: {e}")
        return []
    rules = parse_alerts(text)
    if not rules:
        problems.append(f"{path}: no alert rules found")
    try:
        import yaml  # optional cross-check
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            doc = yaml.safe_load(text)
            full = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
            ws = lambda e: " ".join(str(e).split())  # noqa: E731
            if [r["alert"] for r in full] != [r["alert"] for r in rules] or [
                ws(r["expr"]) for r in full
            ] != [ws(r.get("expr", "")) for r in rules]:
                problems.append(f"{path}: the minimal reader and PyYAML disagree; keep the file's simple shape")
        except Exception as e:  # noqa: BLE001 - any YAML problem is a finding
            problems.append(f"{path}: PyYAML cannot read it: {e}")
    names = set()
    exprs = []
    for r in rules:
        where = f"{path}: alert `{r['alert']}`"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", r["alert"]):
            problems.append(f"{where}: not a valid alert name")
        if r["alert"] in names:
            problems.append(f"{where}: defined twice")
        names.add(r["alert"])
        if not r.get("expr"):
            problems.append(f"{where}: no expr")
        if "for" in r and not re.fullmatch(r"\d+[smhdwy]", r["for"]):
            problems.append(f"{where}: `for: {r['for']}` is not a duration")
        if r["labels"].get("severity") not in ("page", "ticket", "info"):
            problems.append(f"{where}: labels.severity must be page, ticket or info")
        if not r["annotations"].get("summary"):
            problems.append(f"{where}: no annotations.summary")
        exprs.append((where, r.get("expr", "")))
    return exprs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", required=True, help="a /metrics text file from a running server")
    ap.add_argument("--dashboard", action="append", default=[], help="Grafana dashboard JSON")
    ap.add_argument("--alerts", action="append", default=[], help="Prometheus alerting rules YAML")
    ap.add_argument(
        "--samples",
        action="store_true",
        help="count a name as exposed only when a sample carries it (a fresh server must export every series at zero)",
    )
    a = ap.parse_args(argv)

    problems = []
    try:
        with open(a.metrics, encoding="utf-8") as f:
            exposed = exposed_names(f.read(), samples_only=a.samples)
    except OSError as e:
        print(f"check: {a.metrics}: {e}", file=sys.stderr)
        return 2
    if not any(n.startswith(PREFIX) for n in exposed):
        problems.append(f"{a.metrics}: no {PREFIX}* metric in it")

    exprs = []
    for d in a.dashboard:
        exprs += dashboard_exprs(d, problems)
    for r in a.alerts:
        exprs += alert_exprs(r, problems)

    used = set()
    for where, e in exprs:
        names = referenced(e)
        if not names:
            problems.append(f"{where}: references no {PREFIX}* metric: {e!r}")
        for n in sorted(names):
            used.add(n)
            if n not in exposed:
                problems.append(f"{where}: `{n}` is not exposed by the server")

    for p in problems:
        print(f"check: {p}", file=sys.stderr)
    if problems:
        print(f"check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check: {len(exprs)} expressions, {len(used)} metric names, all exposed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
