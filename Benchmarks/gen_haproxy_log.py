#!/usr/bin/env python3
"""Writes a deterministic HAProxy `option httplog` log, as syslog writes it to a file.

    gen_haproxy_log.py --lines 2000000 --seed 42 --out Benchmarks/out/haproxy-2M-s42.log

Same --lines and --seed give the same bytes on every machine (only `random.Random` with a
fixed seed is used; no wall clock, no hashing of Python objects). Lines look like:

  Mar 14 10:00:00 lb01 haproxy[2211]: 198.51.100.23:51234 [14/Mar/2025:10:00:00.412] www~ \
app/s2 0/0/1/23/24 200 5123 - - ---- 311/298/12/4/0 0/0 {Mozilla/5.0 (X11; L} \
"GET /api/v1/items/48213?page=3 HTTP/1.1"

Fields vary the way a busy load balancer's do: a few thousand client addresses with a skewed
popularity, ephemeral source ports, timestamps advancing a few milliseconds per request with
bursts, servers s1..s3 in an app and a static backend, mostly 2xx/3xx with some 4xx/5xx, timers and
byte counts drawn from long-tailed distributions, and request paths built from templates with
ids and query strings. The average line is about 200 bytes.
"""

import argparse
import datetime
import os
import random
import sys

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "Prometheus/2.51.0",
    "kube-probe/1.29",
]

# (weight, method, template, backend pool)
ROUTES = [
    (30, "GET", "/api/v1/items/{id}", "app"),
    (12, "GET", "/api/v1/items?page={page}&per_page={per}&sort={sort}", "app"),
    (8, "POST", "/api/v1/orders", "app"),
    (6, "GET", "/api/v1/orders/{id}/status", "app"),
    (5, "PUT", "/api/v1/users/{id}/preferences", "app"),
    (4, "DELETE", "/api/v1/sessions/{hex}", "app"),
    (10, "GET", "/static/js/app.{hex8}.js", "static"),
    (6, "GET", "/static/css/main.{hex8}.css", "static"),
    (6, "GET", "/static/img/products/{id}_{size}.jpg", "static"),
    (5, "GET", "/search?q={word}+{word}&page={page}", "app"),
    (3, "GET", "/healthz", "app"),
    (2, "GET", "/metrics", "app"),
    (2, "POST", "/api/v1/auth/token", "app"),
    (1, "GET", "/favicon.ico", "static"),
]

WORDS = ["shoes", "red", "coat", "winter", "lamp", "desk", "chair", "oak", "usb", "cable", "phone",
         "case", "garden", "hose", "book", "pen", "mug", "tea", "coffee", "bag"]
SORTS = ["price", "-price", "name", "created_at", "-rating"]
SIZES = ["thumb", "small", "medium", "large"]

# (weight, status)
STATUSES = [(780, 200), (40, 201), (20, 204), (70, 304), (25, 301), (15, 302), (10, 400), (12, 401),
            (5, 403), (30, 404), (3, 429), (6, 500), (4, 502), (2, 503), (1, 504)]
TERMINATION = {500: "SH--", 502: "SH--", 503: "sC--", 504: "sH--"}


def cumulative(weights):
    total = 0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    # A client population with skewed popularity: a few busy NATs, many occasional visitors.
    clients = []
    for _ in range(5000):
        kind = rng.random()
        if kind < 0.5:
            ip = f"10.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        elif kind < 0.7:
            ip = f"192.168.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        else:
            ip = f"{rng.choice([23, 31, 45, 62, 78, 81, 93, 104, 151, 172, 185, 198, 203, 212])}." \
                 f"{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        clients.append(ip)
    client_weights = cumulative([1.0 / (rank + 1) ** 0.9 for rank in range(len(clients))])
    route_cum = cumulative([r[0] for r in ROUTES])
    status_cum = cumulative([s[0] for s in STATUSES])
    ua_cum = cumulative([30, 25, 15, 12, 10, 3, 2, 2, 2, 1, 1])

    hosts = ["lb01"]
    pid = 2211
    start = datetime.datetime(2025, 3, 14, 10, 0, 0, tzinfo=datetime.timezone.utc)
    t_ms = 0.0
    active = 300

    tmp = args.out + ".tmp"
    written = 0
    with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as out:
        chunk = []
        # Formatting per second/millisecond is cached: most consecutive lines share the second.
        cached_second = None
        syslog_prefix = ""
        accept_prefix = ""
        for n in range(args.lines):
            # Requests arrive a few ms apart on average, in bursts.
            t_ms += rng.expovariate(1 / 2.5) if rng.random() < 0.9 else rng.expovariate(1 / 15.0)
            whole_ms = int(t_ms)
            second = whole_ms // 1000
            if second != cached_second:
                cached_second = second
                when = start + datetime.timedelta(seconds=second)
                syslog_prefix = f"{MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S} {hosts[0]} haproxy[{pid}]: "
                accept_prefix = f"{when.day:02d}/{MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S}"

            ip = clients[rng.choices(range(len(clients)), cum_weights=client_weights)[0]]
            port = rng.randrange(1024, 65536)
            route = ROUTES[rng.choices(range(len(ROUTES)), cum_weights=route_cum)[0]]
            _, method, template, pool = route
            path = template
            if "{" in path:
                path = path.replace("{id}", str(rng.randrange(1, 250_000)), 1)
                path = path.replace("{page}", str(rng.randrange(1, 40)))
                path = path.replace("{per}", rng.choice(["20", "50", "100"]))
                path = path.replace("{sort}", rng.choice(SORTS))
                path = path.replace("{hex8}", f"{rng.getrandbits(32):08x}")
                path = path.replace("{hex}", f"{rng.getrandbits(64):016x}")
                path = path.replace("{size}", rng.choice(SIZES))
                while "{word}" in path:
                    path = path.replace("{word}", rng.choice(WORDS), 1)
            status = STATUSES[rng.choices(range(len(STATUSES)), cum_weights=status_cum)[0]][1]
            if pool == "static":
                frontend, backend = "www~", "static/s" + str(rng.randrange(1, 4))
                tr = int(rng.expovariate(1 / 3.0))
                bytes_out = int(rng.lognormvariate(9.0, 1.2)) if status == 200 else rng.randrange(150, 400)
            else:
                frontend = "www~" if rng.random() < 0.92 else "www"
                backend = "app/s" + str(rng.randrange(1, 4))
                tr = int(rng.lognormvariate(3.0, 0.9))
                bytes_out = int(rng.lognormvariate(7.5, 1.3)) if status < 300 else rng.randrange(150, 800)
            tq = 0 if rng.random() < 0.85 else rng.randrange(1, 40)
            tw = 0 if rng.random() < 0.97 else rng.randrange(1, 200)
            tc = rng.randrange(0, 3)
            if status >= 500 and status != 500:
                tr = -1
            ta = tq + tw + tc + max(tr, 0) + rng.randrange(0, 5)
            active = max(50, min(900, active + rng.randrange(-3, 4)))
            fe_conn = active - rng.randrange(0, 12)
            be_conn = rng.randrange(1, 40)
            srv_conn = rng.randrange(0, 15)
            retries = 0 if rng.random() < 0.995 else 1
            termination = TERMINATION.get(status, "----")
            # `capture request header User-Agent len 20`: HAProxy truncates the capture.
            ua = USER_AGENTS[rng.choices(range(len(USER_AGENTS)), cum_weights=ua_cum)[0]][:20]
            chunk.append(
                f"{syslog_prefix}{ip}:{port} [{accept_prefix}.{whole_ms % 1000:03d}] {frontend} {backend} "
                f"{tq}/{tw}/{tc}/{tr}/{ta} {status} {bytes_out} - - {termination} "
                f"{active}/{fe_conn}/{be_conn}/{srv_conn}/{retries} 0/0 {{{ua}}} \"{method} {path} HTTP/1.1\"\n")
            if len(chunk) >= 10_000:
                out.write("".join(chunk))
                written += len(chunk)
                chunk.clear()
        out.write("".join(chunk))
        written += len(chunk)
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out)
    print(f"wrote {written} lines, {size} bytes ({size / written:.1f} bytes/line) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
