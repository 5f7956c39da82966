#!/usr/bin/env python3
"""Paced load: posts audit events to `antibody serve` at a fixed rate, then reads the journal to split each event's
handling time into antibody's own processing and the time spent waiting on the (sandbox's) Google APIs.

Usage: bench/paced.py URL JOURNAL [--rate 1000] [--seconds 10] [--mode violating|compliant|ignored] [--offset N]
Prints one JSON line: the achieved rate, client-side latency, and p50/p99/p99.9 of antibody's own time.
"""
import argparse
import json
import socket
import sqlite3
import threading
import time
import urllib.parse

PADDING = "x" * 1200


def event(mode, index, tag):
    method, rule = "v1.compute.instances.insert", "ignored"
    if mode == "compliant":
        method, rule = "v1.compute.firewalls.patch", f"closed-{index % 100}"
    elif mode == "violating":
        method, rule = "v1.compute.firewalls.patch", f"open-{index}"
    insert_id = f"paced-{tag}-{index}"
    body = json.dumps({
        "insertId": insert_id,
        "logName": "projects/bench/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": f"operation-{insert_id}", "producer": "compute.googleapis.com", "first": True},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "compute.googleapis.com", "methodName": method,
            "resourceName": f"projects/bench/global/firewalls/{rule}",
            "authenticationInfo": {"principalEmail": "careless.user@example.com"},
            "requestMetadata": {"callerIp": "203.0.113.7", "callerSuppliedUserAgent": "gcloud " + PADDING},
        },
        "resource": {"type": "gce_firewall_rule", "labels": {"project_id": "bench"}},
        "severity": "NOTICE", "timestamp": "2026-11-26T10:00:00.000Z",
    })
    headers = {"Content-Type": "application/json", "ce-id": insert_id, "ce-specversion": "1.0",
               "ce-source": "//cloudaudit.googleapis.com/projects/bench/logs/activity",
               "ce-type": "google.cloud.audit.log.v1.written"}
    return body, headers


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("journal")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mode", default="violating")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    target = urllib.parse.urlparse(args.url)
    tag = str(int(time.time()))
    latencies, lock, errors = [], threading.Lock(), [0]
    total = int(args.rate * args.seconds)

    # Requests are built before the clock starts and sent over raw keep-alive sockets, so that the client's own work
    # per event (http.client parses every response header through the email package) competes less for this
    # 2-core machine with what is measured.
    path = target.path or "/"
    requests = []
    for n in range(total):
        body, headers = event(args.mode, args.offset + n, tag)
        payload = body.encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        requests.append((f"POST {path} HTTP/1.1\r\nHost: {target.hostname}:{target.port}\r\n{head}"
                         f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)

    def connect():
        return socket.create_connection((target.hostname, target.port), timeout=30)

    def exchange(connection, request):
        """Sends one request and reads its response; returns the status code."""
        connection.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            rest += chunk
        return int(head.split(b" ", 2)[1])

    def worker(worker_id):
        connection = connect()
        for n in range(worker_id, total, args.threads):
            due = start + n / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                ok = exchange(connection, requests[n]) < 300
            except (OSError, ValueError, IndexError):
                connection.close()
                connection = connect()
                ok = False
            with lock:
                latencies.append(time.perf_counter() - sent)
                errors[0] += 0 if ok else 1

    start = time.monotonic() + 0.2
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    with sqlite3.connect(args.journal) as journal:
        rows = journal.execute(
            "SELECT duration_us, COALESCE(google_us, 0) FROM events WHERE log_key LIKE ?", (f"%paced-{tag}-%",)
        ).fetchall()
    own = [(duration - google) / 1000 for duration, google in rows]
    print(json.dumps({
        "mode": args.mode, "rate_asked": args.rate, "rate_achieved": round(total / elapsed),
        "errors": errors[0], "journaled": len(rows),
        "client_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "client_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "own_p50_ms": round(percentile(own, 0.5), 3), "own_p99_ms": round(percentile(own, 0.99), 3),
        "own_p999_ms": round(percentile(own, 0.999), 3),
        "google_p50_ms": round(percentile([g / 1000 for _, g in rows], 0.5), 3),
    }))


if __name__ == "__main__":
    main()
