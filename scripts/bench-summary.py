#!/usr/bin/env python3
"""Summaries of the load tool's JSON reports for scripts/bench.

  bench-summary.py line FILE            one line for the terminal
  bench-summary.py holds FILE           exit 0 if an S1 step held its targets, else 1 (says why)
  bench-summary.py markdown DIR         the "Server and load" results as Markdown, from DIR/*.json
  bench-summary.py write SUMMARY FILE   put SUMMARY into FILE's "## Server and load" section,
                                        between the bench markers (the rest of the file is kept)

Only the standard library: the reports are plain JSON (see the README's load tool section).
"""

import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

BEGIN = "<!-- scripts/bench: begin -->"
END = "<!-- scripts/bench: end -->"
ACK_P99_TARGET_MS = 50.0


def load(path):
    with open(path) as f:
        return json.load(f)


def get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return default
        d = d[k]
    return d


def fmt(v, digits=1, unit=""):
    if v is None:
        return "–"
    if isinstance(v, (int,)) or (isinstance(v, float) and v >= 1000):
        return f"{v:,.0f}{unit}"
    return f"{v:.{digits}f}{unit}"


def kib(v):
    return None if v is None else v / 1024.0


def ws_rate(r):
    return get(r, "transports", "ws", "frames_per_client_per_sec")


def why_not(r):
    """Why an S1 step did not hold, or None if it did."""
    reasons = []
    if r["exit_code"] != 0:
        reasons.append("; ".join(r["problems"]) or f"exit {r['exit_code']}")
    c = r["connections"]
    if c["failed"] or c["gave_up"]:
        reasons.append(f"{c['failed']} failed connections ({c['failure_reasons']})")
    p99 = get(r, "input_to_ack_ms", "p99")
    if p99 is None or p99 > ACK_P99_TARGET_MS:
        reasons.append(f"p99 input→ack {fmt(p99)} ms > {ACK_P99_TARGET_MS:.0f} ms")
    send = r["config"]["send_rate"]
    rate = ws_rate(r)
    if rate is None or rate < 0.9 * send:
        reasons.append(f"{fmt(rate)} frames/s per client < 90% of {send}")
    return "; ".join(reasons) or None


def cpu_per_frame(w, labelled=False):
    """Server CPU µs per delivered frame of a server window, split into user + kernel time:
    `14.67 (4.7 + 10.0)`, or `14.67 (user 4.7 + kernel 10.0)` where no column header says so.
    Reports from before the split (or from a server without it) give just the total."""
    w = w or {}
    total = fmt(w.get("cpu_us_per_frame"), 2)
    user, system = w.get("cpu_user_us_per_frame"), w.get("cpu_system_us_per_frame")
    if w.get("cpu_us_per_frame") is None or user is None or system is None:
        return total
    if labelled:
        return f"{total} (user {fmt(user)} + kernel {fmt(system)})"
    return f"{total} ({fmt(user)} + {fmt(system)})"


def line(r):
    srv = get(r, "server", "window", default={})
    return (
        f"    clients {r['connections']['clients']}, ok {r['connections']['ok']}, "
        f"failed {r['connections']['failed']}; desyncs {r['desyncs']}; "
        f"ack p50/p99 {fmt(get(r, 'input_to_ack_ms', 'p50'))}/{fmt(get(r, 'input_to_ack_ms', 'p99'))} ms; "
        f"server CPU {fmt(srv.get('cpu_cores'), 2)} cores, {cpu_per_frame(srv, True)} µs/frame, "
        f"tick p99 {fmt(srv.get('tick_p99_ms'), 2)} ms; RSS/conn "
        f"{fmt(kib(get(r, 'server', 'rss_per_connection_bytes')))} KiB; "
        f"generator {fmt(get(r, 'generator', 'cpu_cores_window'), 2)} cores"
    )


def machine():
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        if m:
            model = m.group(1).strip()
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rustc = "rustc ?"
    return (
        f"{model}, {os.cpu_count()} cores, {mem} RAM, Linux {platform.release()}, {rustc}; "
        f"server on core 0 and load tool on core 1 (`taskset`), loopback"
    )


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def srv(r, *keys):
    return get(r, "server", "window", *keys)


def per_core(players, cores):
    """Players one server core would hold at the cost measured (players over cores)."""
    if not cores:
        return "–"
    return f"{players / cores:,.0f}"


def s1(reports):
    rows = []
    knee = None
    for name, r in reports:
        reason = why_not(r)
        if reason is None:
            knee = r["config"]["players"]
        a = r["input_to_ack_ms"]
        rows.append([
            f"{r['config']['players']:,}", r["config"]["rooms"],
            f"{r['connections']['ok']:,}/{r['connections']['clients']:,}",
            fmt(ws_rate(r)),
            f"{fmt(a['p50'])} / {fmt(a['p99'])} / {fmt(a['max'])}",
            fmt(get(r, "frame_interarrival_ms", "p99")),
            fmt(srv(r, "cpu_cores"), 2), per_core(r["config"]["players"], srv(r, "cpu_cores")),
            cpu_per_frame(srv(r)),
            fmt(srv(r, "tick_p99_ms"), 2), srv(r, "tick_overruns"),
            fmt(get(r, "generator", "cpu_cores_window"), 2), r["desyncs"],
            "✅" if reason is None else "❌ " + reason,
        ])
    head = ["players", "rooms", "connected", "frames/s per client", "input→ack p50 / p99 / max ms",
            "frame gap p99 ms", "server cores", "players per server core at this cost",
            "server µs/frame (user + kernel)", "tick p99 ms",
            "overruns", "generator cores", "desyncs", "held"]
    knee_text = (f"**Knee: {knee:,} players** (the last step that held every target)."
                 if knee else "**No step held every target.**")
    knee_text += (" \"Players per server core at this cost\" is the step's players over the server's"
                  " cores: where one core would saturate if the cost per player stayed the same,"
                  " whatever the load tool can drive.")
    return table(head, rows) + "\n\n" + knee_text


def s2(reports):
    rows = []
    for name, r in reports:
        rows.append([
            f"{r['config']['spectators']:,}",
            f"{r['connections']['ok']:,}/{r['connections']['clients']:,}",
            fmt(get(r, "transports", "sse", "frames_per_client_per_sec")),
            fmt(get(r, "frame_interarrival_ms", "p99")),
            fmt(get(r, "server", "whole", "rss_start_bytes", default=0) / 2**20),
            fmt(get(r, "server", "whole", "rss_end_bytes", default=0) / 2**20),
            fmt(kib(get(r, "server", "rss_per_connection_bytes"))),
            fmt(srv(r, "cpu_cores"), 2),
            cpu_per_frame(srv(r)),
            fmt(kib(get(r, "transports", "sse", "server_bytes_per_client_per_sec")), 2),
            fmt(get(r, "generator", "cpu_cores_window"), 2), r["desyncs"],
        ])
    head = ["SSE spectators", "connected", "frames/s per client", "frame gap p99 ms",
            "server RSS before MiB", "RSS loaded MiB", "RSS per connection KiB", "server cores",
            "server µs/frame (user + kernel)", "server KiB/s per client", "generator cores",
            "desyncs"]
    return table(head, rows)


def per_transport(r):
    rows = []
    for name, t in r["transports"].items():
        rows.append([
            name, t["clients"], t["players"], t["verifying"],
            fmt(t["frames_per_client_per_sec"]),
            fmt(kib(t["bytes_per_client_per_sec"]), 2),
            fmt(kib(t.get("server_bytes_per_client_per_sec")), 2),
            fmt(t.get("bytes_per_changed_entity"), 2),
            fmt(t.get("changed_entities_per_frame")), fmt(t.get("entities_per_frame")),
            f"{fmt(t['input_to_ack_ms']['p50'])} / {fmt(t['input_to_ack_ms']['p99'])}",
            fmt(t["frame_interarrival_ms"]["p99"]), t["reconnects"], t["desyncs"],
        ])
    head = ["transport", "clients", "players", "verifying", "frames/s per client",
            "KiB/s per client (frames)", "KiB/s per client (server, wire)", "bytes per changed entity",
            "changed per frame", "entities", "input→ack p50 / p99 ms", "frame gap p99 ms",
            "reconnects", "desyncs"]
    return table(head, rows)


def totals(r):
    c, i = r["connections"], r["inputs"]
    return (
        f"{c['clients']:,} clients: {c['attempted']:,} connections attempted, {c['ok']:,} ok, "
        f"{c['failed']:,} failed, {c['reconnects']:,} reconnects ({c['chaos_drops']:,} chaos drops); "
        f"{r['frames']['received']:,} frames ({r['frames']['verified']:,} verified in full); "
        f"**{r['desyncs']} desyncs**; inputs sent {i['sent']:,}, acknowledged {i['acknowledged']:,}, "
        f"lost {i['lost']}; server {fmt(srv(r, 'cpu_cores'), 2)} cores, "
        f"{cpu_per_frame(srv(r), True)} µs per delivered frame; generator "
        f"{fmt(get(r, 'generator', 'cpu_cores_window'), 2)} cores; exit {r['exit_code']}."
    )


def markdown(d):
    def reports(pattern):
        files = glob.glob(os.path.join(d, pattern))
        rs = [(os.path.basename(f), load(f)) for f in files]
        return sorted(rs, key=lambda x: (x[1]["config"]["players"], x[1]["config"]["spectators"]))

    today = datetime.date.today().isoformat()
    parts = [f"Measured {today} by `scripts/bench` on {machine()}. Each run: "
             "the ramp, then the measured window, then the drain; figures are from the window. "
             "Raw reports: `target/bench/*.json`, plots: `target/bench/*.html`."]
    r1 = reports("S1-*.json")
    if r1:
        c = r1[0][1]["config"]
        parts.append(f"### S1 players: rooms of 50 WebSocket players, inputs at "
                     f"{fmt(c.get('input_rate_hz'), 0)} Hz, {c['tick_rate']} Hz ticks, "
                     f"{c['send_rate']} Hz sends, no AI ships\n\n" + s1(r1))
    r2 = reports("S2-*.json")
    if r2:
        c = r2[0][1]["config"]
        parts.append(f"### S2 spectators: SSE, one room, {c['send_rate']} Hz sends\n\n" + s2(r2))
    for name, title in [("S3.json", "S3 mix: every transport, players and spectators, with chaos"),
                        ("S4.json", "S4 bandwidth: one standard match, every client verifying")]:
        path = os.path.join(d, name)
        if os.path.exists(path):
            r = load(path)
            c = r["config"]
            parts.append(f"### {title}\n\n{c['players']} players + {c['spectators']} spectators in "
                         f"{c['rooms']} room(s), chaos {c['chaos']}/s per client, "
                         f"{c['send_rate']} Hz sends. {totals(r)}\n\n" + per_transport(r))
    floors = sorted(glob.glob(os.path.join(d, "floor-*.json")))
    if floors:
        parts.append("### Floor: the kernel's send() and recv() alone (`bots/examples/kernel_floor.rs`)"
                     "\n\n" + floor([load(f) for f in floors]))
    return "\n\n".join(parts) + "\n"


def floor(runs):
    rows = ["| connections | rate Hz | frame B | input B | frames/s | server cores | "
            "µs per frame (user + kernel) | clients one core holds at this cost | "
            "empty system call µs |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        cpu = r["cpu_user_seconds"] + r["cpu_system_seconds"]
        frames = max(r["frames"], 1)
        per = cpu * 1e6 / frames
        holds = 1e6 / per / r["rate_hz"] if per > 0 else None
        rows.append(f"| {r['connections']:,} | {r['rate_hz']} | {r['frame_bytes']} | "
                    f"{r['input_bytes'] or 'none'} | {r['frames'] / r['seconds']:,.0f} | "
                    f"{cpu / r['seconds']:.2f} | {per:.2f} ({r['cpu_user_seconds'] * 1e6 / frames:.1f} + "
                    f"{r['cpu_system_seconds'] * 1e6 / frames:.1f}) | {fmt(holds, 0)} | "
                    f"{fmt(r.get('null_syscall_us'), 2)} |")
    return ("\n".join(rows) + "\n\nNo server: one `send()` per connection per tick (and one "
            "non-blocking `recv()` of its input), no protocol, no runtime, no readiness polling. "
            "Any server that writes one TCP segment per client per frame spends at least this "
            "here; the S1 and S2 rows above are this plus the server's own work. The empty "
            "system call (`getppid`) is what entering and leaving the kernel costs: all that "
            "batching system calls could save per call, the TCP work itself stays.")


def write(summary_path, target):
    with open(summary_path) as f:
        summary = f.read().strip()
    with open(target) as f:
        text = f.read()
    block = f"{BEGIN}\n{summary}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        m = re.search(r"^## Server and load\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
        section = f"## Server and load\n\n{block}\n\n"
        text = text[:m.start()] + section + text[m.end():] if m else text.rstrip() + "\n\n" + section
    with open(target, "w") as f:
        f.write(text)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "line":
        print(line(load(argv[2])))
    elif cmd == "holds":
        reason = why_not(load(argv[2]))
        if reason:
            print(f"    the step did not hold: {reason}")
            sys.exit(1)
    elif cmd == "markdown":
        sys.stdout.write(markdown(argv[2]))
    elif cmd == "write" and len(argv) == 4:
        write(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
