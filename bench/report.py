"""The bench's report: one line per result for the log and the JSON summary, and the
Markdown table (bench/results/latest.md). Pure functions of the result dicts."""
from __future__ import annotations

import json

from .common import P99_LIMIT_MS


def step_text(s: dict) -> str:
    d = s["delivery"]
    lost = s.get("lost", s.get("missing"))
    ack = s.get("ack") or {}
    client_lag = s.get("client_loop_lag_max_ms")
    return (f"{'PASS' if s['pass'] else 'FAIL'} p50 {d['p50_ms']} ms p99 {d['p99_ms']} ms, "
            f"ack p99 {ack.get('p99_ms')} ms, lost {lost}, ack errors {s['ack_errors']}, "
            f"gen lag {s['generator_lag_max_ms']} ms"
            + (f", client loop lag max {client_lag} ms" if client_lag is not None else "")
            + f", cpu {s.get('cpu')}")


def cpu_text(cpu: dict | None) -> str:
    if not cpu:
        return "–"
    return " / ".join(f"{cpu.get(k, 0):.2f}" for k in ("server", "db", "generator", "other"))


def summary_text(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"][:200]
    s = r["scenario"]
    if s in ("rest-me", "rest-history", "rest-history-rich"):
        return f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, non-2xx {r['non_2xx']}"
    if s in ("dm-max", "cluster-dm"):
        f = r.get("first_failure")
        return (f"held {r['held_msg_s']} msg/s" + (f" (at {r['held_msg_s']}: p99 {r['at_held']['delivery']['p99_ms']} ms)" if r["at_held"] else "")
                + (f"; failed at {f['rate']}: p99 {f['delivery']['p99_ms']} ms, lost {f['lost']}" if f else ""))
    if s in ("group-max", "cluster-group"):
        f = r.get("first_failure")
        return (f"held {r['held_deliveries_s']} deliveries/s ({r['held_sender_msg_s']} msg/s × {r['receivers_counted']})"
                + (f"; failed at {f['rate']} msg/s: p99 {f['delivery']['p99_ms']} ms, missing {f['missing']}" if f else ""))
    if s == "idle-conns":
        first = r.get("first_sockets")
        text = (f"first sockets of {first['sockets']} users: {first['connects_per_s']} conn/s, "
                f"{first['server_cpu_ms_per_connect']} ms server CPU each; " if first else "")
        text += "; ".join(f"{lv['sockets']}: {lv['connects_per_s']} conn/s, {lv['rss_per_socket_kib']} KiB, "
                         f"alive {lv['alive_after_ping_interval']}" for lv in r["levels"])
        big = r.get("big")
        if big:
            text += (f"; big level {big['sockets']} (target {big['target_sockets']}): {big['connects_per_s']} conn/s, "
                     f"{big['rss_per_socket_kib']} KiB, alive after two ping intervals "
                     f"{big['alive_after_two_ping_intervals']}, pinged {big['pinged']} (twice {big['pinged_twice']})"
                     + (f" [limited: {big['limited_by']}]" if big["limited_by"] else ""))
        return text
    if s == "login-storm":
        return (f"/auth/me p99 {r['me']['p99_ms']} ms (p50 {r['me']['p50_ms']}), logins {r['logins']['per_s']}/s "
                f"p99 {r['logins']['p99_ms']} ms")
    if s == "search":
        return (f"{r['messages']:,} messages: " + "; ".join(
            f"{k} p50 {v['p50_ms']} ms p99 {v['p99_ms']} ms" for k, v in r["classes"].items()))
    if s == "recovery":
        return (f"{r['recovered']}/{r['sockets']} recovered, {r['replayed']}/{r['expected']} events "
                f"replayed in {r['all_back_s']} s ({r['replayed_per_s']}/s)")
    if s == "recent-1k":
        return (f"recent-messages ({r['conversations']:,} conversations) p99 {r['recent_messages']['p99_ms']} ms; "
                f"conversations page p99 {r['conversations_page']['p99_ms']} ms")
    if s == "photo-upload":
        return (f"{r['photos']} × {r['photo_bytes'] / 2**20:.1f} MiB in {r['elapsed_s']} s; "
                f"/auth/me p99 {r['me_during']['p99_ms']} ms during the uploads")
    if s == "history-depth":
        return "; ".join(f"{p['page']} ({p['conversation_messages']:,}): {p['rps']:.0f} req/s p99 {p['p99_ms']:.1f} ms"
                         for p in r["pages"])
    if s == "group-linear":
        return "; ".join(f"{st['group']} members, {st['connected']} connected: {st['server_ms_per_message']} ms/msg"
                         for st in r["steps"])
    return json.dumps(r)[:200]


def markdown_table(results: list[dict], meta: dict) -> str:
    lines = [f"Nexus Chat load benchmark — {meta['date']} — {meta['machine']}",
             "",
             "CPU columns: cores used during the measured window (1.00 = one core busy; the box has "
             f"{meta['cores']}), server (with its media worker processes) / database / load generator / everything else on the box "
             "(other users' processes, unattributed kernel work: noise).",
             "",
             "| scenario | target | result | latency | errors / loss | CPU srv / db / gen / other |",
             "|---|---|---|---|---|---|"]
    for r in results:
        s, t = r["scenario"], r["target"]
        if "error" in r:
            lines.append(f"| {s} | {t} | ERROR | – | {r['error'][:120]} | – |")
            continue
        if s in ("rest-me", "rest-history", "rest-history-rich"):
            lines.append(f"| {s} | {t} | {r['rps']:,.0f} req/s (32 conns) | p50 {r['p50_ms']:.1f} ms, "
                         f"p99 {r['p99_ms']:.1f} ms | non-2xx {r['non_2xx']} | {cpu_text(r['cpu'])} |")
        elif s in ("dm-max", "cluster-dm"):
            for st in r["steps"]:
                mark = "held" if st["rate"] == r["held_msg_s"] else ("FAIL" if not st["pass"] else "pass")
                lines.append(f"| {s} | {t} | {st['rate']:,} msg/s: {mark} | delivery p50 {st['delivery']['p50_ms']} ms, "
                             f"p99 {st['delivery']['p99_ms']} ms (ack p99 {st['ack']['p99_ms']} ms) | "
                             f"lost {st['lost']}, ack errors {st['ack_errors']} | {cpu_text(st['cpu'])} |")
            lines.append(f"| **{s}** | {t} | **held {r['held_msg_s'] or 0:,} msg/s** | ≤ {P99_LIMIT_MS:.0f} ms p99, zero loss | | |")
        elif s in ("group-max", "cluster-group"):
            for st in r["steps"]:
                mark = "held" if r["held_sender_msg_s"] == st["rate"] else ("FAIL" if not st["pass"] else "pass")
                lines.append(f"| {s} | {t} | {st['rate']} msg/s → {st['deliveries_per_s_planned']:,} deliveries/s: {mark} | "
                             f"p50 {st['delivery']['p50_ms']} ms, p99 {st['delivery']['p99_ms']} ms | "
                             f"missing {st['missing']}, ack errors {st['ack_errors']} | {cpu_text(st['cpu'])} |")
            lines.append(f"| **{s}** | {t} | **held {r['held_deliveries_s'] or 0:,} deliveries/s** | "
                         f"200 members, {r.get('connects_per_s')} connects/s | | |")
        elif s == "idle-conns":
            first = r.get("first_sockets")
            if first:
                lines.append(f"| {s} | {t} | first socket of each of {first['sockets']} users: "
                             f"{first['connects_per_s']} connects/s, {first['server_cpu_ms_per_connect']} ms server CPU "
                             f"a connect | | failed {first['connect_failed']} | {cpu_text(first['cpu_connect'])} (connect) |")
            for lv in r["levels"]:
                lines.append(f"| {s} | {t} | {lv['sockets']:,} sockets: {lv['connects_per_s']} connects/s "
                             f"({lv.get('server_cpu_ms_per_connect')} ms server CPU a connect), "
                             f"{lv['rss_per_socket_kib']} KiB RSS/socket | alive after ping interval "
                             f"{lv['alive_after_ping_interval']:,}/{lv['sockets']:,} | failed {lv['connect_failed']} | "
                             f"{cpu_text(lv['cpu_connect'])} (connect) |")
            big = r.get("big")
            if big:
                limited = f" (of {big['target_sockets']:,}: {big['limited_by']})" if big["limited_by"] else ""
                lines.append(f"| {s} | {t} | {big['sockets']:,} sockets{limited}: {big['connects_per_s']} connects/s, "
                             f"{big['rss_per_socket_kib']} KiB RSS/socket | alive after two ping intervals "
                             f"{big['alive_after_two_ping_intervals']:,}/{big['sockets']:,}, pinged "
                             f"{big['pinged']:,} (twice {big['pinged_twice']:,}) | failed {big['connect_failed']} | "
                             f"{cpu_text(big['cpu_idle'])} (idle) |")
        elif s == "login-storm":
            lines.append(f"| {s} | {t} | /auth/me at 200 req/s during 16 login loops (bcrypt 12): "
                         f"{r['logins']['per_s']} logins/s | /auth/me p50 {r['me']['p50_ms']} ms, "
                         f"p99 {r['me']['p99_ms']} ms; login p99 {r['logins']['p99_ms']} ms | "
                         f"errors {r['me']['errors']} / {r['logins']['errors']} | {cpu_text(r['cpu'])} |")
        elif s == "search":
            for name, c in r["classes"].items():
                lines.append(f"| {s} | {t} | {name} words at {r['rate_per_class'][name]:.0f} req/s over "
                             f"{r['messages']:,} messages ({c['mean_hits_per_page']} hits/page) | "
                             f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms | errors {c['errors']} | "
                             f"{cpu_text(r['cpu'])} |")
            lines.append(f"| {s} | {t} | index: FULLTEXT {r['fulltext_index_mib']} MiB, table "
                         f"{r['table_mib']} MiB, B-trees {r['btree_indexes_mib']} MiB | "
                         f"seeded in {r['seed_s']} s | | |")
        elif s == "recovery":
            lines.append(f"| {s} | {t} | {r['sockets']:,} sockets drop and reconnect at once: "
                         f"{r['recovered']:,} recovered, {r['replayed']:,} missed events replayed | "
                         f"all back in {r['all_back_s']} s (p50 {r['p50_back_s']} s), "
                         f"{r['replayed_per_s']:,} events/s | expected {r['expected']:,} | {cpu_text(r['cpu'])} |")
        elif s == "recent-1k":
            for name, label in (("recent_messages", "GET /chat/recent-messages (all)"),
                                ("conversations_page", "GET /chat/conversations?limit=20")):
                q = r[name]
                lines.append(f"| {s} | {t} | {label}, {r['conversations']:,} conversations, "
                             f"{q['rate']:.0f} req/s ({q['body_kib']} KiB) | p50 {q['p50_ms']} ms, "
                             f"p99 {q['p99_ms']} ms | errors {q['errors']} | {cpu_text(r['cpu'])} |")
        elif s == "photo-upload":
            u, me = r["upload"], r["me_during"]
            lines.append(f"| {s} | {t} | {r['photos']} photos × {r['photo_bytes'] / 2**20:.1f} MiB at once: "
                         f"{r['elapsed_s']} s ({r['uploads_per_s']}/s) | upload p50 {u['p50_ms']} ms, "
                         f"p99 {u['p99_ms']} ms; /auth/me at {me['rate']:.0f}/s p99 {me['p99_ms']} ms "
                         f"(target ≤ {me['target_p99_ms']:.0f}) | errors {u['errors']} / {me['errors']} | "
                         f"{cpu_text(r['cpu'])} |")
        elif s == "history-depth":
            for p in r["pages"]:
                lines.append(f"| {s} | {t} | {p['page']} page of {r['page']} ({p['conversation_messages']:,} messages): "
                             f"{p['rps']:,.0f} req/s (32 conns) | p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms | "
                             f"non-2xx {p['non_2xx']} | {cpu_text(p['cpu'])} |")
        elif s == "group-linear":
            for st in r["steps"]:
                lines.append(f"| {s} | {t} | {st['group']} members, {st['connected']} connected, {st['rate']} msg/s: "
                             f"{st['server_ms_per_message']} ms server CPU/message, {st['server_us_per_delivery']} µs/delivery | "
                             f"p50 {st['delivery']['p50_ms']} ms, p99 {st['delivery']['p99_ms']} ms | "
                             f"missing {st['missing']} | {cpu_text(st['cpu'])} |")
    return "\n".join(lines)
