# A paced UDP stream on one flow (one socket, one source port): a numbered datagram
# every PACE seconds for SECS seconds to VIP:PORT; the echoes are collected alongside.
# Bounded in count and time. Prints "sent N answered M longest_gap_ms G": G is the
# longest time between two answered datagrams' sending, the stream's gap.
import socket
import sys
import threading
import time

vip, port, pace, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
sent_at = {}
answered = set()
done = threading.Event()


def receive():
    while not done.is_set():
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        words = data.split()
        if len(words) == 2 and words[1].startswith(b"seq"):
            answered.add(int(words[1][3:]))


t = threading.Thread(target=receive)
t.start()
start = time.monotonic()
n = 0
while time.monotonic() - start < secs and n < 100000:
    sent_at[n] = time.monotonic()
    s.sendto(b"seq%d" % n, (vip, port))
    n += 1
    time.sleep(pace)
time.sleep(1)
done.set()
t.join()
times = sorted(sent_at[i] for i in answered)
gap = max((b - a for a, b in zip(times, times[1:])), default=0.0)
print("sent %d answered %d longest_gap_ms %d" % (n, len(answered), gap * 1000), flush=True)
