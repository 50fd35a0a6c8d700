#!/usr/bin/env python3
"""Writes a synthetic login file in the RBA dataset's CSV format, for
measuring `riskgate replay` throughput and memory on large inputs.

    python3 benches/gen_rba_csv.py 1000000 > /tmp/rba_1m.csv
    cargo build --release
    /usr/bin/time -v target/release/riskgate replay /tmp/rba_1m.csv

Shape (deterministic, seed 6): users ~ rows/10 with Zipf-like activity (as
in the public dataset: ~33M logins of ~3.3M users over a year, about one a
second); each user has a home network and one or two browsers; 5% wrong
passwords; 3% placeholder 10/8 addresses with placeholder ASNs; most RTTs
empty; `-` regions; quoted user agents with commas; a few unparsable ones;
credential stuffing from a pool of attack IPs and rare account takeovers.
It is a load generator, not a model of attackers: see `riskgate simulate`.
Standard library only.
"""

import csv
import random
import sys

HEADER = [
    "index", "Login Timestamp", "User ID", "Round-Trip Time [ms]", "IP Address",
    "Country", "Region", "City", "ASN", "User Agent String",
    "Browser Name and Version", "OS Name and Version", "Device Type",
    "Login Successful", "Is Attack IP", "Is Account Takeover",
]

PLACES = [
    ("NO", "Oslo", "Oslo", 2119), ("NO", "Viken", "Drammen", 2119),
    ("NO", "Vestland", "Bergen", 41164), ("NO", "Trøndelag", "Trondheim", 29695),
    ("NO", "-", "-", 12929), ("SE", "Stockholm", "Stockholm", 3301),
    ("US", "New York", "Rochester", 7922), ("DE", "Hesse", "Frankfurt am Main", 3320),
    ("GB", "England", "London", 5089), ("PK", "Punjab", "Lahore", 17557),
]


def user_agents(rng):
    out = []
    for v in range(70, 90):
        out.append((f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{3000 + v}.100 Safari/537.36",
                    f"Chrome {v}.0.{3000 + v}", "Windows 10", "desktop"))
        out.append((f"Mozilla/5.0 (Linux; Android 10; SM-G97{v % 10}F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{3000 + v}.149 Mobile Safari/537.36",
                    f"Chrome Mobile {v}.0.{3000 + v}", "Android 10", "mobile"))
        out.append((f"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
                    f"Firefox {v}.0", "Ubuntu", "desktop"))
    for v in range(11, 15):
        out.append((f"Mozilla/5.0 (iPhone; CPU iPhone OS {v}_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Mobile/15E148 Safari/604.1",
                    f"Mobile Safari {v}.0", f"iOS {v}.3", "mobile"))
        out.append((f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{v - 10}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Safari/605.1.15",
                    f"Safari {v}.0", f"Mac OS X 10.15.{v - 10}", "desktop"))
    out.append(("}{x;;unparsable", "", "", ""))
    rng.shuffle(out)
    return out


def ip_in(rng, place_index):
    if rng.random() < 0.03:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 500000 + place_index
    return f"{80 + place_index}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", PLACES[place_index][3]


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = random.Random(6)
    uas = user_agents(rng)
    n_users = max(10, rows // 10)
    users = []
    for _ in range(n_users):
        place = 0 if rng.random() < 0.6 else rng.randrange(len(PLACES))
        ip, asn = ip_in(rng, place)
        devices = [rng.randrange(len(uas))]
        if rng.random() < 0.3:
            devices.append(rng.randrange(len(uas)))
        users.append((str(rng.randrange(-2**63, 2**63)), place, ip, asn, devices))
    # Zipf-like activity: weight 1/rank^0.8, sampled by cumulative weights.
    weights = [1.0 / (r + 1) ** 0.8 for r in range(n_users)]
    attack_ips = [f"185.220.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(200)]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(HEADER)
    t = 1_580_716_800_000  # 2020-02-03 08:00:00 UTC
    picks = rng.choices(range(n_users), weights=weights, k=rows)
    for i in range(rows):
        t += int(rng.expovariate(1.0) * 1000) + 1
        secs, ms = divmod(t, 1000)
        stamp = f"{_date(secs)}.{ms:03d}"
        user, place, ip, asn, devices = users[picks[i]]
        attack_ip = ato = False
        success = rng.random() >= 0.05
        ua = uas[rng.choice(devices)]
        r = rng.random()
        if r < 0.01:
            ip, asn, place, attack_ip = rng.choice(attack_ips), 205100, 7, True
            success = rng.random() < 0.02
            if rng.random() < 0.5:
                ua = ("python-requests/2.23.0", "Python Requests 2.23", "Other", "bot")
        elif r < 0.0102:
            ip, asn = ip_in(rng, 6)
            place, ato, success = 6, True, True
            ua = uas[rng.randrange(len(uas))]
        elif r < 0.1:
            ip, asn = ip_in(rng, place)
        country, region, city, _ = PLACES[place]
        rtt = "" if rng.random() < 0.7 else str(rng.randrange(20, 900))
        out.writerow([i, stamp, user, rtt, ip, country, region, city, asn, ua[0], ua[1], ua[2], ua[3],
                      success, attack_ip, ato])


def _date(secs):
    days, rem = divmod(secs, 86400)
    # civil_from_days (H. Hinnant)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return f"{y:04d}-{m:02d}-{d:02d} {rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}"


if __name__ == "__main__":
    main()
