# Sends raw Ethernet frames given as hex on the command line out of eth0 (AF_PACKET):
# for malformed traffic no socket API would produce.
import socket
import sys

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for h in sys.argv[1:]:
    s.send(bytes.fromhex(h))
