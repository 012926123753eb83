#!/usr/bin/env python3
"""idle-memory: what idle logged-in desks cost carreld.

    meson setup build-opt --buildtype=release && ninja -C build-opt
    CARREL_BUILD=build-opt python3 tests/bench/idle-memory.py [N]

Starts a private PostgreSQL and carreld (as the integration tests do), reads
carreld's VmRSS, opens N TLS connections that each send Hello and log in and
then stay idle, reads VmRSS again, and prints both and the cost per
connection. N defaults to 1000.
"""

import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def print_big_mappings(pid):
    """The mappings holding over 1 MiB, to see where the memory is."""
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                name = line.strip()
            elif parts[0] == "Rss:" and int(parts[1]) > 1024:
                print("%8d KiB  %s" % (int(parts[1]), name))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 200) if hard != resource.RLIM_INFINITY else n + 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    env = harness.Env()
    wires = []
    try:
        env.start()
        # Every desk here connects from 127.0.0.1.
        d = env.daemon(max_connections=n + 100, max_connections_per_address=n + 100,
                       db_pool_size=8)
        pid = d.proc.pid
        # One desk first, so that everything allocated once is in the baseline.
        first = d.logged_in_wire()
        time.sleep(0.5)
        base = rss_kib(pid)
        for i in range(n):
            w = d.wire(cert="desk-dwn", timeout=120)
            assert w.hello().status == "ok"
            r = w.login("desk-dwn", "admin", harness.ADMIN_PASSWORD)
            assert r.status == "ok", r
            wires.append(w)
        time.sleep(1.0)
        after = rss_kib(pid)
        print("carreld VmRSS: %.1f MiB with 1 desk, %.1f MiB with %d idle logged-in desks; "
              "%.1f KiB per desk" % (base / 1024, after / 1024, n + 1, (after - base) / n))
        if os.environ.get("IDLE_MEMORY_SMAPS"):
            print_big_mappings(pid)
        first.close()
    finally:
        for w in wires:
            w.close()
        env.stop()


if __name__ == "__main__":
    main()
