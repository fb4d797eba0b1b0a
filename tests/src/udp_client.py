# Sends n datagrams, each from a new socket (a new source port, so a new flow), and
# prints who answered each, or "timeout". Bounded: n datagrams, 2 s each at most.
# Every socket stays open to the end: a closed one's port could be handed out again,
# and a reused port is the same flow (it would not be scheduled anew).
import socket
import sys

vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opened = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    opened.append(s)
    s.settimeout(2)
    s.sendto(b"ping%d" % i, (vip, port))
    try:
        data, _ = s.recvfrom(2048)
        print(data.split()[0].decode())
    except socket.timeout:
        print("timeout")
for s in opened:
    s.close()
