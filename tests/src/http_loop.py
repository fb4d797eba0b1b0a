# A client loop for failover tests: one HTTP request (a new connection) every PACE seconds
# (default 20 ms) for DURATION seconds, each bounded by TIMEOUT (default 300 ms); prints
# "time ok" per request.
import socket
import sys
import time

vip, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pace = float(sys.argv[4]) if len(sys.argv) > 4 else 0.02
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 0.3
end = time.time() + duration
while time.time() < end:
    t = time.time()
    ok = 0
    try:
        s = socket.create_connection((vip, port), timeout=timeout)
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        ok = int(s.recv(64).startswith(b"HTTP/1."))
        s.close()
    except OSError:
        pass
    print(f"{t:.3f} {ok}", flush=True)
    time.sleep(pace)
