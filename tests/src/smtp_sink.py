"""A local SMTP sink for the labs: answers the dialogue as a relay would and writes each
message (envelope and data) to DIR/mail-N.txt. Bounded: it exits after SECS seconds.

usage: smtp_sink.py ADDR PORT DIR SECS
"""
import os
import socketserver
import sys
import threading

ADDR, PORT, DIR, SECS = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
count = 0
lock = threading.Lock()


class Session(socketserver.StreamRequestHandler):
    timeout = 10

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        global count
        self.reply("220 sink ESMTP")
        envelope, data = [], None
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("HELO", "EHLO"):
                envelope.append(line)
                self.reply("250 sink")
            elif verb in ("MAIL", "RCPT"):
                envelope.append(line)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    raw = self.rfile.readline(65536)
                    if not raw or raw in (b".\r\n", b".\n"):
                        break
                    lines.append(raw.decode("utf-8", "replace"))
                data = "".join(lines)
                with lock:
                    count += 1
                    n = count
                path = os.path.join(DIR, f"mail-{n}.txt")
                with open(path + ".tmp", "w") as f:
                    f.write("\n".join(envelope) + "\n\n" + data)
                os.rename(path + ".tmp", path)
                self.reply("250 queued")
                envelope = []
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server((ADDR, PORT), Session)
threading.Timer(SECS, server.shutdown).start()
print("listening", flush=True)
server.serve_forever()
