#!/usr/bin/env python3
"""How does the installed SIPp answer a 401 that carries TWO challenges?

The softswitch challenges a REGISTER with two WWW-Authenticate headers in one
401: one with algorithm=SHA-256 and one with algorithm=MD5 (RFC 8760 section
2.4: several challenges, the preferred one first).  This script plays a tiny
UDP registrar on loopback that sends exactly such a 401, then checks the
Authorization header SIPp sends back: which algorithm it chose and whether the
response digest is right for that algorithm.  It answers 200 to a correct
response and 403 to anything else, so SIPp's exit status tells the story too.

Usage (the script runs SIPp itself, bounded by timeouts):
    ./dual-challenge-check.py [--order sha256-first|md5-first|md5-only|sha256-only]
                              [--ip 127.0.0.51] [--port 5060] [--calls 3]

It prints one line per REGISTER it received and a verdict.  Loopback only.
"""
import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

REALM = "pbx.local"


def h(algo, s):
    fn = hashlib.sha256 if algo.upper().startswith("SHA-256") else hashlib.md5
    return fn(s.encode()).hexdigest()


def header(msg, name):
    """All values of header `name` (case-insensitive), in order."""
    out = []
    for line in msg.split("\r\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def params(v):
    return {k.lower(): (a if a else b) for k, a, b in
            re.findall(r'([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', v)}


def challenges(order, nonce):
    # distinct nonces, so the answer shows which challenge SIPp really used
    sha = f'Digest realm="{REALM}", nonce="sha{nonce}", qop="auth", algorithm=SHA-256'
    md5 = f'Digest realm="{REALM}", nonce="md5{nonce}", qop="auth", algorithm=MD5'
    return {"sha256-first": [sha, md5], "md5-first": [md5, sha],
            "md5-only": [md5], "sha256-only": [sha]}[order]


def reply(req, code, reason, extra=()):
    lines = [f"SIP/2.0 {code} {reason}"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for v in header(req, name):
            if name == "To" and "tag=" not in v:
                v += ";tag=bench"
            lines.append(f"{name}: {v}")
    lines += list(extra)
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def serve(sock, order, passwords, log, stop):
    n = 0
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        req = data.decode(errors="replace")
        if not req.startswith("REGISTER"):
            continue
        auth = header(req, "Authorization")
        if not auth:
            n += 1
            nonce = f"n{n:08d}{os.getpid()}"
            extra = [f"WWW-Authenticate: {c}" for c in challenges(order, nonce)]
            sock.sendto(reply(req, 401, "Unauthorized", extra), addr)
            log.append(("challenge", len(extra)))
            continue
        p = params(auth[0])
        algo = p.get("algorithm", "MD5")
        user = p.get("username", "")
        pw = passwords.get(user, "")
        ha1 = h(algo, f"{user}:{p.get('realm', '')}:{pw}")
        ha2 = h(algo, f"REGISTER:{p.get('uri', '')}")
        if "qop" in p:
            want = h(algo, f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:{p['qop']}:{ha2}")
        else:
            want = h(algo, f"{ha1}:{p.get('nonce')}:{ha2}")
        # the digest must match the algorithm it names AND the nonce of that
        # algorithm's challenge
        ok = want == p.get("response") and p.get("nonce", "").startswith(
            "sha" if algo.upper().startswith("SHA-256") else "md5")
        log.append(("answer", algo, ok, auth[0]))
        sock.sendto(reply(req, 200 if ok else 403, "OK" if ok else "Forbidden"), addr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", default="sha256-first",
                    choices=["sha256-first", "md5-first", "md5-only", "sha256-only"])
    ap.add_argument("--ip", default="127.0.0.51")
    ap.add_argument("--port", type=int, default=5060)
    ap.add_argument("--calls", type=int, default=3)
    a = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    tmp = tempfile.mkdtemp(prefix="dualchal.")
    users = os.path.join(tmp, "users.csv")
    passwords = {f"u{i:05d}": f"pw{i:05d}x" for i in range(1, a.calls + 1)}
    with open(users, "w") as f:
        f.write("SEQUENTIAL\n")
        for u, p in passwords.items():
            f.write(f"{u};{p}\n")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((a.ip, a.port))
    sock.settimeout(0.2)
    log, stop = [], threading.Event()
    t = threading.Thread(target=serve, args=(sock, a.order, passwords, log, stop), daemon=True)
    t.start()

    cmd = ["timeout", "-k", "2", "20", "sipp", f"{a.ip}:{a.port}",
           "-sf", os.path.join(here, "register-auth.xml"), "-inf", users,
           "-i", "127.0.0.1", "-p", "0", "-m", str(a.calls), "-r", "10",
           "-timeout", "15s", "-nostdin", "-trace_err",
           "-set", "domain", REALM]
    proc = subprocess.run(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    stop.set()
    t.join(2)
    sock.close()

    print(f"order of challenges in the 401: {a.order}")
    for entry in log:
        if entry[0] == "challenge":
            print(f"  sent 401 with {entry[1]} WWW-Authenticate header(s)")
        else:
            _, algo, ok, raw = entry
            print(f"  got answer algorithm={algo} digest {'VALID' if ok else 'WRONG'}:")
            print(f"    Authorization: {raw}")
    errs = ""
    for name in os.listdir(tmp):
        if name.endswith("_errors.log"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                errs = f.read()
    if errs.strip():
        print("  SIPp error log:")
        for line in errs.strip().splitlines()[:6]:
            print("    " + line)
    if proc.stderr.strip():
        print("  SIPp stderr: " + proc.stderr.strip().splitlines()[-1][:300])
    answers = [e for e in log if e[0] == "answer"]
    good = sum(1 for e in answers if e[2])
    print(f"verdict: sipp exit={proc.returncode}; {good}/{a.calls} registrations authenticated")
    return 0 if good == a.calls else 1


if __name__ == "__main__":
    sys.exit(main())
