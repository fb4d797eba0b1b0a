# Abusive local clients of xvs's /metrics (127.0.0.1:9147) and control socket: idle
# connections, huge requests, more connections than xvs serves, a slow client. Prints
# one "name value..." line per observation; every step is bounded in time.
import os
import socket
import sys
import time

METRICS = ("127.0.0.1", 9147)
ns = "".join(c for c in os.readlink("/proc/self/ns/net") if c.isdigit())
CTL = f"/run/xvs/xvs-net{ns}.sock"
IDLE = int(sys.argv[1])


def read_all(s):
    data = b""
    while True:
        try:
            c = s.recv(65536)
        except OSError:
            break
        if not c:
            break
        data += c
    return data


def conn(src):
    """A connection to /metrics from `src`, an address of 127/8 (all on lo)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(METRICS)
    return s


def count_503(conns):
    """How many of `conns` were told 503 (each read for 0.2 s at most)."""
    busy = 0
    for m in conns:
        m.settimeout(0.2)
        try:
            if m.recv(64).startswith(b"HTTP/1.1 503"):
                busy += 1
        except OSError:
            pass
    return busy


def scrape():
    t = time.time()
    s = socket.create_connection(METRICS, timeout=5)
    s.settimeout(5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    d = read_all(s)
    return time.time() - t, d.split(b"\r\n", 1)[0].decode(), len(d)


def command(line):
    t = time.time()
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(5)
    u.connect(CTL)
    try:
        u.sendall(line)
    except OSError:
        pass
    d = read_all(u)
    return time.time() - t, d.split(b"\n")[0].decode(), d.split(b"\n")[1].decode()[:60] if b"\n" in d else ""


# The abusive connections come from several addresses (xvs serves 8 per address, 64 in
# all); the well-behaved clients from 127.0.0.1.
idle = []
for i in range(IDLE):
    idle.append(conn(f"127.0.0.{10 + i % 8}"))
    u = socket.socket(socket.AF_UNIX)
    u.connect(CTL)
    idle.append(u)
time.sleep(0.3)
t, status, n = scrape()
print(f"scrape_beside_idle {t:.3f} {status.replace(' ', '_')} {n}", flush=True)
t, first, _ = command(b"status\n")
print(f"status_beside_idle {t:.3f} {first}", flush=True)

# A request head of 1 MiB, and a command line of 100 kB.
s = socket.create_connection(METRICS, timeout=5)
s.settimeout(5)
try:
    s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n")
except OSError:
    pass
print("huge_request " + read_all(s).split(b"\r\n", 1)[0].decode().replace(" ", "_"), flush=True)
t, first, second = command(b"s" * 100000 + b"\n")
print(f"huge_command {first} {second.replace(' ', '_')}", flush=True)

# More connections than xvs serves at once: the extra ones are told so at once.
more = []
for i in range(100):
    more.append(conn(f"127.0.1.{1 + i % 20}"))
time.sleep(0.5)
print(f"over_limit_503 {count_503(more)}", flush=True)
for c in idle + more:
    c.close()
time.sleep(0.3)
t, status, n = scrape()
print(f"scrape_after {t:.3f} {status.replace(' ', '_')} {n}", flush=True)

# One address opening 12: past its 8, told 503; another address is served meanwhile.
one = [conn("127.0.2.1") for _ in range(12)]
time.sleep(0.5)
busy = count_503(one)
t, status, n = scrape()
print(f"per_address_503 {busy} {status.replace(' ', '_')}", flush=True)
for c in one:
    c.close()

# A slow client: a byte every 0.5 s, never the blank line. xvs must hang up on it.
s = socket.create_connection(METRICS, timeout=5)
t = time.time()
cut = None
for b in (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 60):
    try:
        s.sendall(bytes([b]))
        s.settimeout(0.5)
        if s.recv(64) == b"":
            cut = time.time() - t
            break
    except socket.timeout:
        continue
    except OSError:
        cut = time.time() - t
        break
print(f"slow_client_cut {cut if cut is None else round(cut, 1)}", flush=True)
