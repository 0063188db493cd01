#!/usr/bin/python3
"""Independent DKIM/ARC tools for Ferry's tests, on Debian's python3-dkim (dkimpy) and
python3-dnspython. The test's public keys live in a zone file (JSON: {"sel._domainkey.example.com":
"v=DKIM1; k=rsa; p=..."}); nothing here uses the machine's DNS.

  dkim_tools.py serve ZONE            answer TXT queries from ZONE on 127.0.0.1 (UDP, a free port);
                                      prints the port on stdout, runs until stdin closes
  dkim_tools.py verify ZONE < MSG     every DKIM-Signature checked (dkim.verify with dnsfunc), JSON
  dkim_tools.py arc ZONE < MSG        the ARC chain checked (dkim.arc_verify), JSON
  dkim_tools.py sign DOMAIN SELECTOR KEYFILE < MSG > SIGNED   sign as an upstream server would

dkimverify and arcverify (the command-line tools) always ask the system's DNS; this wrapper is
the same library with its documented dnsfunc hook pointed at the zone file.
"""
import json
import socket
import sys
import threading

import dkim
import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset


def load_zone(path):
    with open(path) as f:
        return {k.lower().rstrip('.'): v for k, v in json.load(f).items()}


def dnsfunc_for(zone):
    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        txt = zone.get(name.lower().rstrip('.'))
        return txt.encode() if txt is not None else None
    return dnsfunc


def answer(zone, data, udp=False):
    q = dns.message.from_wire(data)
    r = dns.message.make_response(q)
    r.flags |= 0x0400  # authoritative
    question = q.question[0]
    name = question.name.to_text().lower().rstrip('.')
    txt = zone.get(name)
    if txt is not None and question.rdtype == dns.rdatatype.TXT:
        # NB a TXT string holds at most 255 bytes: a 2048-bit RSA key needs several.
        chunks = ' '.join('"%s"' % txt[i:i + 255] for i in range(0, len(txt), 255))
        r.answer.append(dns.rrset.from_text(question.name, 60, 'IN', 'TXT', chunks))
    elif txt is None:
        r.set_rcode(3)  # NXDOMAIN
    out = r.to_wire()
    limit = q.payload if q.edns >= 0 else 512
    if udp and len(out) > limit:
        # Too big for this UDP answer: say so (TC), and the client asks again over TCP.
        r = dns.message.make_response(q)
        r.flags |= dns.flags.TC
        out = r.to_wire()
    return out


def serve(zone_path):
    zone = load_zone(zone_path)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(('127.0.0.1', 0))
    port = udp.getsockname()[1]
    # NB an answer over 512 bytes (a 2048-bit key) makes resolvers without EDNS (c-ares, which
    # Node uses) ask again over TCP on the same port: serve both.
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(('127.0.0.1', port))
    tcp.listen(16)

    def udp_loop():
        while True:
            data, addr = udp.recvfrom(4096)
            try:
                out = answer(zone, data, udp=True)
                udp.sendto(out, addr)
            except Exception as e:  # a broken query must not stop the server
                print('dns error: %s' % e, file=sys.stderr, flush=True)

    def tcp_conn(conn):
        with conn:
            try:
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    n = int.from_bytes(head, 'big')
                    data = b''
                    while len(data) < n:
                        more = conn.recv(n - len(data))
                        if not more:
                            return
                        data += more
                    out = answer(zone, data)
                    conn.sendall(len(out).to_bytes(2, 'big') + out)
            except Exception as e:
                print('dns error: %s' % e, file=sys.stderr, flush=True)

    def tcp_loop():
        while True:
            conn, _ = tcp.accept()
            threading.Thread(target=tcp_conn, args=(conn,), daemon=True).start()

    threading.Thread(target=udp_loop, daemon=True).start()
    threading.Thread(target=tcp_loop, daemon=True).start()
    print(port, flush=True)
    sys.stdin.read()  # the test closes stdin (or ends) to stop us


def verify(zone_path):
    msg = sys.stdin.buffer.read()
    zone = load_zone(zone_path)
    d = dkim.DKIM(msg)
    sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
    results = []
    for i in range(len(sigs)):
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc_for(zone))
        except dkim.DKIMException:
            ok = False  # dkimpy raises for some failures (a body hash mismatch) instead of returning False
        tags = dkim.util.parse_tag_value(sigs[i])
        results.append({'d': tags.get(b'd', b'').decode(), 's': tags.get(b's', b'').decode(),
                        'a': tags.get(b'a', b'').decode(), 'h': tags.get(b'h', b'').decode(),
                        'l': b'l' in tags, 'ok': bool(ok)})
    print(json.dumps(results))


def arc(zone_path):
    msg = sys.stdin.buffer.read()
    zone = load_zone(zone_path)
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc_for(zone))
    print(json.dumps({'cv': cv.decode() if isinstance(cv, bytes) else cv, 'reason': reason,
                      'instances': [{'instance': r.get('instance'), 'ams': r.get('ams-valid'),
                                     'as': r.get('as-valid'), 'cv': (r.get('cv') or b'').decode()}
                                    for r in results]}))


def sign(domain, selector, keyfile):
    msg = sys.stdin.buffer.read()
    with open(keyfile, 'rb') as f:
        key = f.read()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    include_headers=[b'from', b'to', b'subject', b'date', b'message-id', b'mime-version', b'content-type'],
                    canonicalize=(b'relaxed', b'relaxed'))
    sys.stdout.buffer.write(sig.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n') + msg)


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'serve':
        serve(sys.argv[2])
    elif cmd == 'verify':
        verify(sys.argv[2])
    elif cmd == 'arc':
        arc(sys.argv[2])
    elif cmd == 'sign':
        sign(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit('unknown command %s' % cmd)
