# A client loop for failover tests: one HTTP request (a new connection) every 20 ms for
# DURATION seconds, each bounded by a 300 ms timeout; prints "time ok" per request.
import socket
import sys
import time

vip, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + duration
while time.time() < end:
    t = time.time()
    ok = 0
    try:
        s = socket.create_connection((vip, port), timeout=0.3)
        s.settimeout(0.3)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        ok = int(s.recv(64).startswith(b"HTTP/1."))
        s.close()
    except OSError:
        pass
    print(f"{t:.3f} {ok}", flush=True)
    time.sleep(0.02)
