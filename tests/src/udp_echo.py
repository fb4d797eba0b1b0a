# A UDP echo for a lab real server: answers "<name> <payload>" from the address it is
# bound to (the VIP in DR, so the client sees the reply come from the VIP).
import socket
import sys

name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(name.encode() + b" " + data, peer)
