#!/usr/bin/env python3
"""Runs the code blocks of witn's documentation and compares the output they show.

    python3 test/docs/doc_blocks.py [--db billing] [--keep] docs/concepts.md ...

Needs a running cluster (PGHOST, PGPORT, PGUSER of a superuser) with a template database
(--template, default witn_template: witn installed, test/cluster.sh makes it). test/docs/run.sh
starts one of its own and runs this on the checked pages.

What runs
---------
Each page gets a fresh database (--db, default "billing", the name the pages use), copied from
the template (witn installed), and its blocks run in page order in it, each in its own psql
session: a page's blocks build on each other. Blocks by the fence's language:

  sql        run with psql (ON_ERROR_STOP off, VERBOSITY verbose, no footer), statement by
             statement, and what each statement shows (below) is compared with what came out
  sh, bash   a block made of `curl http://localhost:3000/...` calls (postgrest.md) is replayed
             against PostgREST's statements, simulated as test/pgtap/api_request.psql does (no
             PostgREST runs): POST to a table or /rpc/..., PATCH and DELETE with `?col=eq.v`;
             $ADMIN, $INGEST, $ACME and $READER are the tokens postgrest.md defines. Each call
             must answer 2xx, and a POST /events must store no late event (Prefer:
             return=representation is replayed as return=minimal: the status is checked, not
             the body). A call of another shape (GET, other filters) skips its block, saying
             why. Any other shell block must carry a marker (run or skip)
  others     (json, ini, text, none) are shown output or configuration, not run, not counted

What a statement shows
----------------------
A statement ends at a line ending in `;` (outside quotes, dollar quotes and comments). The
comment lines right after it (no blank line between) are its output:

  -- ERROR:  NAME: message        an error: the ERROR line must be what came out (after the
  -- DETAIL:  ...                 normalisation below), and each further line (LINE, caret,
  -- HINT:  ...                   DETAIL, HINT, CONTEXT) must come out too, in that order; a
                                  page may leave lines out. When the message starts with a name
                                  of the error table of docs/concepts.md (#errors), the SQLSTATE
                                  must be that name's (VALIDATION_ERROR is WT001, ...).
  --  col | col                   a result table (psql's aligned format): header and rows
  -- -----+-----                  compared cell by cell after normalisation; alignment and
  --  v   | v                     psql's "(N rows)" footer do not matter.
  anything else                   prose, not compared.

and a comment on the statement's last line, `...;  -- t` or `-- 0.8.0 (why)`, whose first word
is a boolean or a number, is the statement's one value: it must return one row of one column
with that value. A statement that shows nothing must not fail. NOTICEs and WARNINGs are not
compared unless shown.

Normalisation (both sides, per cell or error line)
--------------------------------------------------
  timestamps  2026-12-02 04:24:08.27+00, ISO forms with T/Z  -> <timestamp>
  durations   an interval with fractional seconds, 00:00:01.234567  -> <duration>
  PIDs        "PID 3358"  -> "PID <pid>"
  dates       compared as written, unless the page carries `<!-- docs-test: dates-as-of
              YYYY-MM-DD -->`: its shown dates are then moved by the months between that day
              and today (so 2026-12-01, "this month" on 2 December 2026, stays "this month").
Ids are not normalised: every page starts in a fresh database, so its ids are what it shows.

Markers
-------
An HTML comment line right before a fence (blank lines between are allowed, several markers
may follow each other), invisible when rendered:

  <!-- docs-test: skip REASON -->            not run; counted as skipped, with the reason
  <!-- docs-test: run -->                    run a shell block with bash (cwd: a temp dir;
                                             PGDATABASE is the page's database)
  <!-- docs-test: database NAME -->          run the block connected to database NAME
                                             (e.g. postgres, where pg_cron lives)
  <!-- docs-test: databases A B ... -->      run the block in each of these databases; besides
                                             what it shows, each must print the same
  <!-- docs-test: before SQL -->             run SQL first in the block's session (LOAD 'witn')
  <!-- docs-test: setup                      hidden SQL run at this point (a line of its own
  SQL ...                                    starts the comment, `-->` on a line ends it),
  -->                                        for state a page takes for granted; must not fail
  <!-- docs-test: setup-page PAGE -->        hidden: run the SQL blocks of PAGE (a path from the
                                             repository's root) here, as that page runs them

and once anywhere in a page:

  <!-- docs-test: without-extension -->      the page's database starts without witn
  <!-- docs-test: dates-as-of YYYY-MM-DD --> see Normalisation

Output: one line per block, `ok`, `not ok` (with a diff) or `skip`, then per page
`# page: N blocks, R run, S skipped, P passed, F failed (Ts)`. Exit 1 when a block failed.
"""
import argparse
import datetime
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PSQL = os.path.join(os.environ.get("WITN_PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")
API_REQUEST = os.path.join(ROOT, "test", "pgtap", "api_request.psql")
MARK = "@@docs-test chunk %d@@"

# ---- the page -----------------------------------------------------------------------------------

MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*(-->)?\s*$")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")


class Block:
    def __init__(self, page, line, lang, text, markers):
        self.page, self.line, self.lang, self.text, self.markers = page, line, lang, text, markers

    def marker(self, name):
        for m in self.markers:
            if m == name or m.startswith(name + " "):
                return m[len(name):].strip() or True
        return None


def read_page(path):
    """The page's blocks and hidden setups, in order, and its page-wide markers."""
    lines = open(path, encoding="utf-8").read().split("\n")
    items, pending, page_markers = [], [], set()
    dates_as_of = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            body = m.group(1)
            if body == "setup" and not m.group(2):
                j = i + 1
                while j < len(lines) and lines[j].strip() != "-->":
                    j += 1
                items.append(Block(path, i + 1, "setup", "\n".join(lines[i + 1:j]), []))
                i = j + 1
                continue
            if body.startswith("setup-page "):
                items.append(Block(path, i + 1, "setup-page", body.split(None, 1)[1], []))
            elif body == "without-extension":
                page_markers.add(body)
            elif body.startswith("dates-as-of "):
                dates_as_of = datetime.date.fromisoformat(body.split()[1])
            else:
                pending.append(body)
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            indent, ticks, lang = f.group(1), f.group(2), f.group(3).lower()
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*" + ticks + r"\s*$", lines[j]):
                j += 1
            body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
            items.append(Block(path, i + 1, lang, "\n".join(body), pending))
            pending = []
            i = j + 1
            continue
        if line.strip():
            pending = []  # a marker belongs to the fence right after it
        i += 1
    return items, page_markers, dates_as_of


# ---- SQL statements and what they show ------------------------------------------------------------

VALUE_WORD = re.compile(r"^(t|f|-?\d+(\.\d+)*)$")


def code_state(line, state):
    """Scans one line; returns (state at its end, index of a trailing -- comment or None, last
    top-level code character). state: None, "'", '"', "/*", or a dollar tag."""
    i, last, comment = 0, "", None
    while i < len(line):
        c = line[i]
        if state is None:
            if line.startswith("--", i):
                comment = i
                break
            if line.startswith("/*", i):
                state, i = "/*", i + 2
                continue
            if c in "'\"":
                state = c
            elif c == "$":
                m = re.match(r"\$([A-Za-z_]\w*)?\$", line[i:])
                if m:
                    state, i = m.group(0), i + len(m.group(0))
                    continue
            if not c.isspace():
                last = c
        elif state == "/*":
            if line.startswith("*/", i):
                state, i = None, i + 2
                continue
        elif state in ("'", '"'):
            if c == state:
                state = None
                last = c
        elif line.startswith(state, i):
            i += len(state)
            state, last = None, "$"
            continue
        i += 1
    return state, comment, last


class Chunk:
    """A statement (or a psql meta-command) and what the page shows for it."""

    def __init__(self, sql, inline, shown):
        self.sql, self.inline, self.shown = sql, inline, shown


def split_sql(text):
    chunks, code, state = [], [], None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if state is None and not code and (not line.strip() or line.lstrip().startswith("--")):
            i += 1  # prose between statements
            continue
        if state is None and not code and line.lstrip().startswith("\\"):
            chunks.append(Chunk(line, None, []))
            i += 1
            continue
        state, comment, last = code_state(line, state)
        code.append(line if comment is None else line[:comment].rstrip())
        i += 1
        if state is None and last == ";":
            inline = line[comment + 2:].strip() if comment is not None else None
            shown = []
            while i < len(lines) and lines[i].lstrip().startswith("--"):
                shown.append(re.sub(r"^\s*-- ?", "", lines[i]))
                i += 1
            chunks.append(Chunk("\n".join(code), inline, shown))
            code = []
    if code and "\n".join(code).strip():
        chunks.append(Chunk("\n".join(code), None, []))
    return chunks


# ---- normalisation ---------------------------------------------------------------------------

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)?")
DURATION = re.compile(r"(\d+ days? )?-?\d+:\d\d:\d\d\.\d+")
DATE = re.compile(r"\b(\d{4})-(\d\d)-(\d\d)\b")
PID = re.compile(r"\bPID \d+")


def normalise(text, month_shift=0):
    text = TIMESTAMP.sub("<timestamp>", text)
    text = DURATION.sub("<duration>", text)
    text = PID.sub("PID <pid>", text)
    if month_shift:
        def shift(m):
            y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
            n = y * 12 + mo - 1 + month_shift
            return "%04d-%02d-%02d" % (n // 12, n % 12 + 1, d)
        text = DATE.sub(shift, text)
    return text


def parse_tables(lines):
    """psql aligned tables in lines: [(header cells, [row cells])]."""
    tables, i = [], 0
    while i + 1 < len(lines):
        if re.match(r"^-+(\+-+)*$", lines[i + 1].strip()) and "-" in lines[i + 1]:
            ncol = lines[i + 1].count("+") + 1
            header = split_row(lines[i], ncol, lines[i + 1])
            rows, j = [], i + 2
            while j < len(lines) and lines[j].strip() and not re.match(r"^\(\d+ rows?\)$", lines[j].strip()):
                rows.append(split_row(lines[j], ncol, lines[i + 1]))
                j += 1
            tables.append((header, rows))
            i = j
        else:
            i += 1
    return tables


def split_row(line, ncol, rule):
    cells = [c.strip() for c in line.split("|")]
    if len(cells) != ncol:  # a value with a | in it: cut by the rule's column positions
        cuts = [k for k, ch in enumerate(rule) if ch == "+"]
        bounds = [0] + cuts + [max(len(line), len(rule)) + 1]
        cells = [line[bounds[k] + (1 if k else 0):bounds[k + 1]].strip() for k in range(ncol)]
    if len(cells) == 1 and cells == [""] and ncol == 1:
        return [""]
    return cells


def render(tables):
    out = []
    for header, rows in tables:
        out.append(" | ".join(header))
        out.append("-" * 8)
        out.extend(" | ".join(r) for r in rows)
    return out


# ---- running -------------------------------------------------------------------------------------

ERROR_NAMES = {}


def load_error_table():
    ref = os.path.join(ROOT, "docs", "concepts.md")
    for line in open(ref, encoding="utf-8"):
        m = re.match(r"^\|\s*`(WT\d{3})`\s*\|\s*`([A-Z_]+)`\s*\|", line)
        if m:
            ERROR_NAMES[m.group(2)] = m.group(1)


def psql(db, script, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        name = f.name
    try:
        p = subprocess.run([PSQL, "-X", "-q", "-d", db, "-f", name], capture_output=True, text=True,
                           env=env, timeout=300)
    finally:
        os.unlink(name)
    return p.returncode, p.stdout, p.stderr


PREAMBLE = ("\\set ON_ERROR_STOP 0\n\\set VERBOSITY verbose\n\\set SHOW_CONTEXT errors\n"
            "\\pset footer off\n\\pset pager off\n\\pset null ''\n")


def split_by_marks(text, n):
    parts, current, index = {}, [], None
    for line in text.split("\n"):
        m = re.match(r"^@@docs-test chunk (\d+)@@$", line.strip())
        if m:
            if index is not None:
                parts[index] = current
            index, current = int(m.group(1)), []
        elif index is not None:
            current.append(line)
    if index is not None:
        parts[index] = current
    return [parts.get(k, []) for k in range(n)]


def error_lines(stderr_lines):
    """psql's messages without its prefix, LOCATION lines and SQLSTATEs; [(sqlstate, lines)]."""
    messages = []
    for line in stderr_lines:
        line = re.sub(r"^psql:[^:]*:\d+: ", "", line)
        if not line.strip() or line.startswith("LOCATION:"):
            continue
        m = re.match(r"^(ERROR|WARNING|NOTICE|INFO|FATAL):  ([0-9A-Z]{5}): (.*)$", line)
        if m:
            messages.append([m.group(2), m.group(1), ["%s:  %s" % (m.group(1), m.group(3))]])
        elif messages:
            messages[-1][2].append(line.rstrip())
        else:
            messages.append([None, "ERROR", [line.rstrip()]])
    return messages


def check_chunk(chunk, out, err, shift):
    """Problems of one statement: a list of strings (empty: it passed)."""
    problems = []
    messages = error_lines(err)
    errors = [m for m in messages if m[1] in ("ERROR", "FATAL") or m[0] is None]
    shown_error = chunk.shown and re.match(r"^(ERROR|FATAL):", chunk.shown[0])
    shown_notice = chunk.shown and re.match(r"^(WARNING|NOTICE|INFO):", chunk.shown[0])
    if shown_error or shown_notice:
        want = [normalise(l.rstrip(), shift) for l in chunk.shown]
        pool = errors if shown_error else [m for m in messages if m[1] in ("WARNING", "NOTICE", "INFO")]
        if not pool:
            return ["shows %s but none came out" % want[0].split(":")[0]] + ["  out: " + l for l in out]
        state, _, got = pool[0]
        got = [normalise(l, shift) for l in got]
        if got[0] != want[0]:
            problems.append("shown:  " + want[0])
            problems.append("actual: " + got[0])
        else:
            k = 1
            for w in want[1:]:
                while k < len(got) and got[k] != w:
                    k += 1
                if k == len(got):
                    problems.append("shown line not in the message: " + w)
                    k = 1
                else:
                    k += 1
        name = re.match(r"^\w+:  ([A-Z_]+):", want[0])
        if name and name.group(1) in ERROR_NAMES and state != ERROR_NAMES[name.group(1)]:  # else a standard error
            problems.append("SQLSTATE %s, but %s is %s in the error table" % (state, name.group(1), ERROR_NAMES[name.group(1)]))
        if problems:
            problems += ["  full message: " + l for l in pool[0][2]]
        return problems
    if errors:
        return ["failed, and the page shows no error:"] + ["  " + l for m in errors for l in m[2]]
    got_tables = parse_tables(out)
    want_tables = parse_tables(chunk.shown)
    if want_tables:
        want = render([( [normalise(c, shift) for c in h], [[normalise(c, shift) for c in r] for r in rows])
                       for h, rows in want_tables])
        got = render([([normalise(c) for c in h], [[normalise(c) for c in r] for r in rows])
                      for h, rows in got_tables])
        if want != got:
            problems.append("output differs (- shown, + actual):")
            problems += ["  " + l for l in difflib.unified_diff(want, got, "shown", "actual", lineterm="", n=2)][2:]
    elif chunk.inline:
        word = re.split(r"[\s:(;,]", chunk.inline, maxsplit=1)[0]
        if VALUE_WORD.match(word):
            cells = [r for _, rows in got_tables for r in rows]
            if len(cells) != 1 or len(cells[0]) != 1:
                problems.append("shows the value %s, but returned %d rows" % (word, len(cells)))
            elif normalise(cells[0][0]) != normalise(word, shift):
                problems.append("shows %s, returned %s" % (word, cells[0][0]))
    return problems


def run_sql_block(block, db, shift, before=None, outputs=None):
    chunks = split_sql(block.text)
    parts = [PREAMBLE]
    if before:
        parts.append(before + "\n")
    for k, c in enumerate(chunks):
        parts.append("\\echo '%s'\n\\warn '%s'\n%s\n" % (MARK % k, MARK % k, c.sql))
    rc, out, err = psql(db, "".join(parts))
    if outputs is not None:
        outputs.append(normalise(out))
    outs, errs = split_by_marks(out, len(chunks)), split_by_marks(err, len(chunks))
    problems = []
    if rc not in (0, 1, 3) or (not chunks and err.strip()):
        problems.append("psql exited %d: %s" % (rc, err.strip()[:500]))
    pre = err.split(MARK % 0)[0] if chunks else err
    if [l for l in pre.split("\n") if "ERROR" in l]:
        problems.append("before the first statement: " + pre.strip()[:500])
    for k, c in enumerate(chunks):
        found = check_chunk(c, outs[k], errs[k], shift)
        if found:
            first = c.sql.strip().split("\n")[0]
            problems.append("statement %d (%s%s):" % (k + 1, first[:90], " ..." if "\n" in c.sql.strip() else ""))
            problems += ["    " + x for x in found]
    return len(chunks), problems


# ---- curl, replayed against PostgREST's statements (test/pgtap/api_request.psql) ----------------

TOKENS = {"ADMIN": {"role": "witn_admin"}, "INGEST": {"role": "witn_ingest"},
          "ACME": {"role": "witn_customer", "customer_key": "acme"}, "READER": {"role": "witn_reader"}}


def curl_calls(text):
    """The argv of each curl call in a block; None when the block is not made of curl calls."""
    calls, buf = [], ""
    for line in text.split("\n"):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        buf += line[:-1] + " " if s.endswith("\\") else line + "\n"
        if s.endswith("\\"):
            continue
        try:
            argv = shlex.split(buf)
        except ValueError:
            continue  # a quoted body goes on on the next line
        if not argv or argv[0] != "curl":
            return None
        calls.append(argv)
        buf = ""
    return calls if calls and not buf.strip() else None


class Number(str):
    """A JSON number kept as written."""


def curl_to_sql(argv):
    """The simulated request for one curl call, as SQL returning its jsonb answer; or a reason."""
    method, url, headers, body = None, None, {}, None
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-X":
            method, i = argv[i + 1], i + 2
        elif a == "-H":
            k, _, v = argv[i + 1].partition(":")
            headers[k.strip().lower()] = v.strip()
            i += 2
        elif a in ("-d", "--data"):
            body, i = argv[i + 1], i + 2
        elif a.startswith("http"):
            url, i = a, i + 1
        else:
            return "curl option %s is not replayed" % a
    if url is None:
        return "no URL"
    auth = headers.get("authorization", "")
    m = re.match(r"^Bearer \$(\w+)$", auth)
    if not m or m.group(1) not in TOKENS:
        return "no known token"
    token = json.dumps(TOKENS[m.group(1)])
    method = method or ("POST" if body is not None else "GET")
    u = urllib.parse.urlsplit(url)
    path = u.path.lstrip("/")
    query = urllib.parse.parse_qsl(u.query)
    if "$(" in (body or ""):
        return "the body runs a command"
    q = lambda s: "'" + s.replace("'", "''") + "'"
    if method == "POST" and path.startswith("rpc/"):
        # Numbers as written (5.00 stays 5.00), as PostgREST passes them.
        scalars = json.loads(body or "{}", parse_float=Number, parse_int=Number)
        values = json.loads(body or "{}")
        named = ", ".join("%s := %s" % (k, "NULL" if v is None else q(scalars[k] if isinstance(scalars[k], str) else json.dumps(v)))
                          for k, v in values.items())
        statement = "SELECT coalesce(json_agg(c), '[]') AS body FROM (SELECT * FROM witn_api.%s(%s)) c" % (path[4:], named)
        return "SELECT pg_temp.request(%s, %s, 'POST', %s, %s, %s::json)" % (
            q(TOKENS[m.group(1)]["role"]), q(token), q("/" + path), q(statement), q(body or "{}"))
    if method == "POST":
        cols = dict(query).get("columns")
        extra = [k for k, _ in query if k != "columns"]
        # return=representation: the same statement; the status is checked, not the body.
        if extra or headers.get("prefer", "missing=default") not in ("missing=default", "return=representation"):
            return "POST with %s is not replayed" % (extra or headers.get("prefer"))
        return "SELECT pg_temp.post({t}::jsonb, {p}, {b}::json, {c}, {d})".format(
            t=q(token), p=q(path), b=q(body or "{}"),
            c="ARRAY[%s]::text[]" % ", ".join(q(c) for c in cols.split(",")) if cols else "NULL",
            d="true" if headers.get("prefer") == "missing=default" else "false")
    if method in ("PATCH", "DELETE") and len(query) == 1 and query[0][1].startswith("eq."):
        col, val = query[0][0], query[0][1][3:]
        if method == "DELETE":
            return "SELECT pg_temp.delete({t}::jsonb, {p}, {c}, {v})".format(t=q(token), p=q(path), c=q(col), v=q(val))
        return "SELECT pg_temp.patch({t}::jsonb, {p}, {c}, {v}, {b}::json)".format(
            t=q(token), p=q(path), c=q(col), v=q(val), b=q(body or "{}"))
    return "%s %s is not replayed" % (method, url)


LATE = "SELECT json_build_object('late', count(*)) FROM witn.events WHERE late;"


def run_curl_block(block, db, calls):
    """Each call must answer 2xx; a POST /events must also store no late event (a request that
    answers 201 while its events change nothing is a page bug too)."""
    parts = [PREAMBLE, "\\i %s\n\\pset format unaligned\n\\pset tuples_only on\n" % API_REQUEST]
    problems, n = [], 0
    for argv in calls:
        sql = curl_to_sql(argv)
        if not sql.startswith("SELECT"):
            return 0, None, sql
        parts.append("\\echo '%s'\n\\warn '%s'\n%s\n%s;\n%s\n" % (MARK % n, MARK % n, LATE, sql, LATE))
        n += 1
    rc, out, err = psql(db, "".join(parts))
    outs, errs = split_by_marks(out, n), split_by_marks(err, n)
    for k, argv in enumerate(calls):
        url = next(a for a in argv if a.startswith("http"))
        try:
            late_before, answer, late_after = [json.loads(l) for l in outs[k] if l.strip()]
            status = int(answer["status"])
        except (ValueError, KeyError, TypeError):
            problems.append("call %d (%s): no answer: %s %s" % (k + 1, url, " ".join(outs[k])[:300], " ".join(errs[k])[:300]))
            continue
        if not 200 <= status < 300:
            problems.append("call %d (%s): HTTP %d: %s" % (
                k + 1, url, status, json.dumps({x: answer.get(x) for x in ("code", "message", "detail")})))
        elif late_after["late"] != late_before["late"]:
            problems.append("call %d (%s): HTTP %d, but %d of its events were stored late (they changed nothing)" % (
                k + 1, url, status, late_after["late"] - late_before["late"]))
    return n, problems, None


# ---- a page --------------------------------------------------------------------------------------

def fresh_db(db, template, with_extension):
    admin = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
             "-c", "SET client_min_messages = warning",
             "-c", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db]
    create = 'CREATE DATABASE "%s"%s' % (db, " TEMPLATE " + template if with_extension else "")
    subprocess.run(admin + ["-c", create], check=True, capture_output=True)


def roles():
    p = subprocess.run([PSQL, "-X", "-At", "-d", "postgres", "-c", "SELECT rolname FROM pg_roles"],
                       capture_output=True, text=True, check=True)
    return set(p.stdout.split())


def drop_roles(names, db):
    for r in sorted(names):
        for d in ("postgres", db):
            subprocess.run([PSQL, "-X", "-q", "-d", d, "-c", 'DROP OWNED BY "%s"' % r], capture_output=True)
        subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", 'DROP ROLE IF EXISTS "%s"' % r], capture_output=True)


def cron_jobs():
    """The pg_cron job ids in database postgres (none when pg_cron is not there)."""
    p = subprocess.run([PSQL, "-X", "-At", "-d", "postgres", "-c", "SELECT jobid FROM cron.job"],
                       capture_output=True, text=True)
    return set(p.stdout.split()) if p.returncode == 0 else set()


def run_page(path, args):
    items, page_markers, as_of = read_page(path)
    today = datetime.date.today()
    shift = (today.year * 12 + today.month - as_of.year * 12 - as_of.month) if as_of else 0
    name = os.path.relpath(path, ROOT)
    t0 = time.time()
    before, jobs_before = roles(), cron_jobs()
    fresh_db(args.db, args.template, "without-extension" not in page_markers)
    counts = dict(blocks=0, run=0, skipped=0, passed=0, failed=0)
    workdir = tempfile.mkdtemp(prefix="witn-docs-")
    os.chmod(workdir, 0o777)
    for b in items:
        where = "%s:%d" % (name, b.line)
        if b.lang in ("setup", "setup-page"):
            if b.lang == "setup":
                n, problems = run_sql_block(b, args.db, shift)
            else:  # another page's SQL blocks, as that page runs them
                problems = []
                for other in read_page(os.path.join(ROOT, b.text))[0]:
                    if other.lang in ("sql", "setup") and not other.marker("skip"):
                        problems += run_sql_block(other, args.db, shift)[1]
            if problems:
                counts["failed"] += 1
                print("not ok %s hidden setup failed" % where)
                print("\n".join("#   " + p for p in problems))
            continue
        if b.lang not in ("sql", "sh", "bash", "shell", "console"):
            continue
        counts["blocks"] += 1
        reason = b.marker("skip")
        if reason:
            counts["skipped"] += 1
            print("skip   %s (%s): %s" % (where, b.lang, reason))
            continue
        db = b.marker("database") or args.db
        problems, n = None, 0
        if b.lang == "sql" and b.marker("databases"):
            # The same block in each database, and the same output from each.
            outputs, problems = [], []
            dbs = b.marker("databases").split()
            for d in dbs:
                n, found = run_sql_block(b, d, shift, before=b.marker("before"), outputs=outputs)
                problems += ["in %s: %s" % (d, x) for x in found]
            for d, o in zip(dbs[1:], outputs[1:]):
                if o != outputs[0]:
                    problems.append("%s and %s differ:" % (dbs[0], d))
                    problems += ["  " + l for l in difflib.unified_diff(outputs[0].split("\n"), o.split("\n"), dbs[0], d, lineterm="", n=1)][2:]
            what = "%d statements in %s" % (n, ", ".join(dbs))
        elif b.lang == "sql":
            n, problems = run_sql_block(b, db, shift, before=b.marker("before"))
            what = "%d statements" % n
        elif b.marker("run"):
            env = dict(os.environ, PGDATABASE=db)
            p = subprocess.run(["bash", "-euo", "pipefail", "-c", b.text], cwd=workdir, capture_output=True,
                               text=True, env=env, timeout=300)
            problems = [] if p.returncode == 0 else ["exit %d" % p.returncode] + (p.stdout + p.stderr).strip().split("\n")[-20:]
            what = "shell"
        else:
            calls = curl_calls(b.text)
            if calls is None:
                problems, what = ["a shell block needs a marker: <!-- docs-test: run --> or <!-- docs-test: skip REASON -->"], "shell"
            else:
                n, problems, why = run_curl_block(b, db, calls)
                if why:
                    counts["skipped"] += 1
                    print("skip   %s (curl): %s" % (where, why))
                    continue
                what = "%d PostgREST calls, replayed" % n
        counts["run"] += 1
        if problems:
            counts["failed"] += 1
            print("not ok %s (%s, %s)" % (where, b.lang, what))
            print("\n".join("#   " + p for p in problems))
        else:
            counts["passed"] += 1
            print("ok     %s (%s, %s)" % (where, b.lang, what))
        sys.stdout.flush()
    subprocess.run(["rm", "-rf", workdir])
    created = roles() - before
    if not args.keep:
        subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", "SET client_min_messages = warning", "-c",
                        'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % args.db], capture_output=True)
    for extra in ("billing_restored", "billing_plain", "billing_staging"):
        subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", "SET client_min_messages = warning", "-c",
                        'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % extra], capture_output=True)
    drop_roles(created, "postgres")
    for job in sorted(cron_jobs() - jobs_before):  # the page's pg_cron jobs go with its database
        subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", "SELECT cron.unschedule(%s)" % job], capture_output=True)
    print("# %s: %d blocks, %d run, %d skipped, %d passed, %d failed (%.1fs)" % (
        name, counts["blocks"], counts["run"], counts["skipped"], counts["passed"], counts["failed"], time.time() - t0))
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    load_error_table()
    if len(ERROR_NAMES) < 14:
        sys.exit("docs/concepts.md's error table (WT001 ... WT014) was not found")
    ap.add_argument("--db", default="billing")
    ap.add_argument("--keep", action="store_true", help="keep the (last) page's database, to look at it")
    ap.add_argument("--template", default=os.environ.get("WITN_TEMPLATE_DB", "witn_template"))
    ap.add_argument("pages", nargs="+")
    args = ap.parse_args()
    failed = 0
    for page in args.pages:
        failed += run_page(os.path.abspath(page), args)["failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
