#!/usr/bin/env python3
"""Reads a journal written during a paced run and splits each event's handling time into antibody's own processing and
the time spent waiting on the (sandbox's) Google APIs: every row carries `duration_us` and, of it, `google_us`.

Usage: bench/own_time.py JOURNAL MODE. Prints one JSON line with p50/p99/p99.9 of the own time, in ms.
"""
import json
import sqlite3
import sys


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else 0


def main():
    journal, mode = sys.argv[1], sys.argv[2]
    with sqlite3.connect(journal) as connection:
        rows = connection.execute("SELECT duration_us, COALESCE(google_us, 0) FROM events WHERE duration_us IS NOT NULL").fetchall()
    own = [(duration - google) / 1000 for duration, google in rows]
    print(json.dumps({
        "mode": mode, "journaled": len(rows),
        "own_p50_ms": round(percentile(own, 0.5), 3), "own_p99_ms": round(percentile(own, 0.99), 3),
        "own_p999_ms": round(percentile(own, 0.999), 3),
        "google_p50_ms": round(percentile([google / 1000 for _, google in rows], 0.5), 3),
    }))


if __name__ == "__main__":
    main()
