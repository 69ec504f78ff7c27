#!/usr/bin/env python3
"""Writes the multiline golden cases (ml_*.log / ml_*.want) from the hand-written traces in
collector/multiline/testdata/traces: each trace file's lines go to stderr, with a stdout access
line after each, so the streams interleave; the .want lists the records per stream
(order=stream). Run from this directory: python3 mkmultiline.py"""
import json, os

TRACES = "../../../multiline/testdata/traces"
TS = "2026-11-23T03:00:%02d.%09dZ"

def read_trace(path):
    opts, lines, want, block, inblock = {}, [], [], None, False
    for l in open(path).read().split("\n")[:-1]:
        if l.startswith("# ") and not lines and not opts:
            for kv in l[2:].split():
                k, v = kv.split("=", 1)
                opts[k] = v
        elif l == ">>>":
            inblock, block = True, []
        elif l == "<<<":
            inblock = False
            want.append("\n".join(block))
        elif inblock:
            lines.append(l); block.append(l)
        else:
            lines.append(l); want.append(l)
    return opts, lines, want

def q(s):
    return json.dumps(s, ensure_ascii=False)

def cri(n, stream, tag, msg):
    return "%s %s %s %s\n" % (TS % (n // 1000000 % 60, n), stream, tag, msg)

def write(name, header, log, want_out, want_err):
    with open(name + ".log", "w") as f:
        f.write("".join(log))
    with open(name + ".want", "w") as f:
        f.write("# " + header + "\n")
        for w in want_out:
            f.write("stdout " + q(w) + "\n")
        for w in want_err:
            f.write(w if w.startswith("stderr ") else "stderr " + q(w) + "\n")

# One case per detector: the trace on stderr, an access line on stdout after each line.
for lang in ["java", "node", "dotnet", "python", "go", "ruby", "php", "dart"]:
    opts, lines, want = read_trace(os.path.join(TRACES, lang + ".txt"))
    log, out = [], []
    for i, l in enumerate(lines):
        log.append(cri(i, "stderr", "F", l))
        access = "GET /health 200 %d" % i
        log.append(cri(i, "stdout", "F", access))
        out.append(access)
    write("ml_" + lang, "multiline=%s order=stream" % opts["detect"], log, out, want)

# A Java trace whose exception line is 40000 bytes, written by the runtime as 16 KiB partial
# chunks, with stdout lines between the chunks; then a trace that ends the file (flushed by
# flush_after, no line follows it).
big = "java.lang.IllegalArgumentException: " + "x" * (40000 - 36)
chunks = [big[i:i + 16384] for i in range(0, len(big), 16384)]
log, out = [], []
n = 0
log.append(cri(n, "stderr", "F", "2026-11-23 03:00:00 ERROR request failed")); n += 1
for i, c in enumerate(chunks):
    log.append(cri(n, "stderr", "P" if i < len(chunks) - 1 else "F", c)); n += 1
    log.append(cri(n, "stdout", "F", "between chunk %d" % i)); n += 1
    out.append("between chunk %d" % i)
frames = ["\tat com.example.Api.handle(Api.java:%d)" % (10 + i) for i in range(3)]
for fr in frames:
    log.append(cri(n, "stderr", "F", fr)); n += 1
log.append(cri(n, "stderr", "F", "2026-11-23 03:00:01 INFO next")); n += 1
tail = ["java.lang.OutOfMemoryError: Java heap space", "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)",
        "\tat com.example.Cache.grow(Cache.java:88)"]
for l in tail:
    log.append(cri(n, "stderr", "F", l)); n += 1
err = ["2026-11-23 03:00:00 ERROR request failed", "\n".join([big] + frames), "2026-11-23 03:00:01 INFO next", "\n".join(tail)]
write("ml_java_partials16k", "multiline=java order=stream max_line_bytes=65536", log, out, err)

# Docker json-file splits at 16 KiB too; a Python traceback with a long frame.
def docker(n, stream, msg, partial=False):
    return json.dumps({"log": msg + ("" if partial else "\n"), "stream": stream, "time": TS % (0, n)}) + "\n"
longcode = "    call(" + "a" * 20000 + ")"
tb = ["Traceback (most recent call last):", '  File "/app/main.py", line 3, in <module>', longcode,
      "ValueError: bad value"]
log = [docker(0, "stdout", "starting")]
n = 1
for l in tb:
    parts = [l[i:i + 16384] for i in range(0, len(l), 16384)] or [""]
    for i, p in enumerate(parts):
        log.append(docker(n, "stderr", p, i < len(parts) - 1)); n += 1
log.append(docker(n, "stdout", "done"))
write("ml_docker_python", "multiline=python order=stream", log, ["starting", "done"], ["\n".join(tb)])

# Level detection on plain-text lines, and a joined trace without a level (an error).
lv = [("ERROR something broke", "error"), ("2026-11-23 03:00:00.123 WARN  [main] c.e.App - slow", "warning"),
      ("2026/11/23 03:00:00 [error] 12#12: *1 open() failed", "error"),
      ("[2026-11-23 03:00:00] production.INFO: user logged in", "info"),
      ("E1206 12:34:56.789012       1 main.go:42] sync failed", "error"),
      ("I1206 12:34:56.789012       1 main.go:40] syncing", "info"),
      ('time="2026-11-23T03:00:00Z" level=warning msg="disk 91% full"', "warning"),
      ("ERROR:root:payment declined", "error"), ("fail: Microsoft.AspNetCore.Server[1]", "error"),
      ("dbug: Shop.Cart[0]", "debug"), ("[CRITICAL] out of memory", "critical"),
      ("GET /health 200", None), ("2026-11-23 03:00:00 user info updated", None),
      ('{"level":"error","msg":"json is not looked at"}', None)]
log, out = [], []
for i, (m, l) in enumerate(lv):
    log.append(cri(i, "stdout", "F", m))
    out.append((m, l))
trace = ["Traceback (most recent call last):", '  File "/app/x.py", line 1, in <module>', "KeyError: 'id'"]
for l in trace:
    log.append(cri(len(log), "stderr", "F", l))
with open("ml_level.log", "w") as f:
    f.write("".join(log))
with open("ml_level.want", "w") as f:
    f.write("# multiline=python detect_level=true order=stream\n")
    for m, l in out:
        f.write("stdout " + q(m) + ((' fields={"level":"%s"}' % l) if l else "") + "\n")
    f.write("stderr " + q("\n".join(trace)) + ' fields={"level":"error"}\n')

# Custom rule: records begin with a date; a max_lines cut flags both parts (T).
lines = ["2026-11-23 03:00:00 job started", "  step 1", "  step 2", "  step 3", "  step 4", "  step 5",
         "2026-11-23 03:00:01 job done"]
log = [cri(i, "stdout", "F", l) for i, l in enumerate(lines)]
with open("ml_custom_cut.log", "w") as f:
    f.write("".join(log))
with open("ml_custom_cut.want", "w") as f:
    f.write("# ml_start=^\\d{4}-\\d{2}-\\d{2} max_lines=4 altered multiline_cut=2\n")
    f.write("stdout T " + q("\n".join(lines[0:4])) + "\n")
    f.write("stdout T " + q("\n".join(lines[4:6])) + "\n")
    f.write("stdout " + q(lines[6]) + "\n")
