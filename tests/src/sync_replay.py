"""Replays captured connection-sync datagrams, unchanged, from forged source addresses.

usage: sync_replay.py PCAP PORT SOURCES TARGETS
  PCAP     a tcpdump capture (Ethernet, classic pcap) of the sync traffic
  PORT     the sync port: datagrams to it are replayed, to it
  SOURCES  comma-separated addresses to send from (held by this host for the test)
  TARGETS  comma-separated addresses to send to

Prints how many payloads were captured and how many datagrams were sent. Bounded: each
payload once per source and target.
"""
import socket
import struct
import sys


def payloads(path, port):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    out = []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 17:
            continue
        udp = ip[ihl:]
        dport = struct.unpack(">H", udp[2:4])[0]
        if dport == port:
            out.append(bytes(udp[8:]))
    return out


def main():
    pcap, port, sources, targets = sys.argv[1:5]
    port = int(port)
    got = payloads(pcap, port)
    sent = 0
    for src in sources.split(","):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, port))
        for dst in targets.split(","):
            for p in got:
                s.sendto(p, (dst, port))
                sent += 1
        s.close()
    print(f"{len(got)} {sent}")


if __name__ == "__main__":
    main()
