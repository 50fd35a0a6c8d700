//! `riskgate simulate`: deterministic, well-formed, labelled synthetic
//! logins in the RBA dataset's layout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::process::Command;

use riskgate::tools::simulate::{self, HEADER, Label, SimConfig, Sources, Summary};

fn generate(cfg: &SimConfig, sources: &mut Sources) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let summary = simulate::run(cfg, sources, &mut out).unwrap();
    (out, summary)
}

fn records(csv_bytes: &[u8]) -> Vec<csv::StringRecord> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_bytes);
    let header = r.headers().unwrap().clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), HEADER.to_vec());
    r.records().map(Result::unwrap).collect()
}

fn data_sources() -> Option<Sources> {
    let dir = Sources::locate(None).filter(|d| d.is_dir());
    if dir.is_none() {
        eprintln!("no data directory (../shared/data or $RISKGATE_SIM_DATA): skipping");
    }
    dir.map(|d| Sources::load(&d).unwrap())
}

const COL_TS: usize = 1;
const COL_USER: usize = 2;
const COL_RTT: usize = 3;
const COL_IP: usize = 4;
const COL_COUNTRY: usize = 5;
const COL_REGION: usize = 6;
const COL_CITY: usize = 7;
const COL_ASN: usize = 8;
const COL_UA: usize = 9;
const COL_OS: usize = 11;
const COL_DEVICE: usize = 12;
const COL_SUCCESS: usize = 13;
const COL_ATTACK_IP: usize = 14;
const COL_ATO: usize = 15;
const COL_ATTACKER: usize = 16;
const COL_DEVICE_ID: usize = 17;
const COL_BINDING: usize = 18;

fn parse_bool(s: &str) -> bool {
    match s {
        "True" => true,
        "False" => false,
        other => panic!("not a dataset boolean: `{other}`"),
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let cfg = SimConfig::new(42, 300, 14);
    let (a, _) = generate(&cfg, &mut Sources::builtin().unwrap());
    let (b, _) = generate(&cfg, &mut Sources::builtin().unwrap());
    assert_eq!(a, b);
    // Reusing the sources (interned agents) must not change the output.
    let mut reused = Sources::builtin().unwrap();
    let (_, _) = generate(&SimConfig::new(7, 300, 14), &mut reused);
    let (c, _) = generate(&cfg, &mut reused);
    assert_eq!(a, c);
    let (d, _) = generate(
        &SimConfig::new(43, 300, 14),
        &mut Sources::builtin().unwrap(),
    );
    assert_ne!(a, d);
}

#[test]
fn with_the_corpora_the_output_is_deterministic_too() {
    let Some(mut s1) = data_sources() else { return };
    let cfg = SimConfig::new(5, 300, 10);
    let (a, sum) = generate(&cfg, &mut s1);
    let (b, _) = generate(&cfg, &mut data_sources().unwrap());
    assert_eq!(a, b);
    assert!(
        sum.sources.iter().any(|s| s.contains("uap-core"))
            && sum
                .sources
                .iter()
                .any(|s| s.contains("user-agents.json.gz"))
            && sum.sources.iter().any(|s| s.contains("firehol")),
        "{:?}",
        sum.sources
    );
}

#[test]
fn rows_are_well_formed_ordered_and_consistent() {
    let mut cfg = SimConfig::new(3, 1500, 30);
    cfg.attack_rate = 0.05;
    let (bytes, summary) = generate(&cfg, &mut Sources::builtin().unwrap());
    let rows = records(&bytes);
    assert_eq!(rows.len() as u64, summary.rows);
    let labels: HashSet<&str> = Label::ALL.iter().map(|l| l.as_str()).collect();
    let start = simulate::format_timestamp(cfg.start_day * 86_400_000);
    let mut last_ts = String::new();
    let mut ip_geo: HashMap<String, (String, String, String, String)> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 19, "row {i}: {r:?}");
        assert_eq!(r[0].parse::<usize>().unwrap(), i);
        let ts = &r[COL_TS];
        assert_eq!(ts.len(), 23, "{ts}");
        assert!(
            ts.as_bytes()[10] == b' ' && ts.as_bytes()[19] == b'.',
            "{ts}"
        );
        assert!(ts >= last_ts.as_str(), "row {i}: {ts} after {last_ts}");
        assert!(ts >= start.as_str(), "{ts} before {start}");
        last_ts = ts.to_string();
        r[COL_USER].parse::<i64>().unwrap();
        assert!(r[COL_RTT].is_empty() || r[COL_RTT].parse::<u32>().unwrap() >= 1);
        r[COL_IP].parse::<Ipv4Addr>().unwrap();
        assert_eq!(r[COL_COUNTRY].len(), 2);
        r[COL_ASN].parse::<u32>().unwrap();
        let success = parse_bool(&r[COL_SUCCESS]);
        parse_bool(&r[COL_ATTACK_IP]);
        let ato = parse_bool(&r[COL_ATO]);
        let attacker = &r[COL_ATTACKER];
        assert!(
            attacker.is_empty() || labels.contains(attacker),
            "{attacker}"
        );
        // A takeover is exactly a successful attack.
        assert_eq!(ato, success && !attacker.is_empty(), "row {i}: {r:?}");
        assert!(
            ["mobile", "desktop", "tablet", "bot", "unknown", ""].contains(&&r[COL_DEVICE]),
            "{}",
            &r[COL_DEVICE]
        );
        // One address, one location: whoever uses it (10.x placeholders
        // stand for several real /24s, as in the dataset).
        if !r[COL_IP].starts_with("10.") {
            let geo = (
                r[COL_COUNTRY].to_string(),
                r[COL_REGION].to_string(),
                r[COL_CITY].to_string(),
                r[COL_ASN].to_string(),
            );
            let seen = ip_geo.entry(r[COL_IP].to_string()).or_insert(geo.clone());
            assert_eq!(*seen, geo, "{}", &r[COL_IP]);
        }
    }
    // A field with commas is quoted and parses back whole.
    assert!(bytes.windows(13).any(|w| w == b"\"Mozilla/5.0 "));
}

#[test]
fn devices_are_bound_for_some_users_and_copied_but_never_bound_by_targeted_attackers() {
    let mut cfg = SimConfig::new(5, 3000, 40);
    cfg.attack_rate = 0.05;
    cfg.mix = simulate::parse_mix("targeted=3,naive=1,stuffing=1").unwrap();
    let (bytes, _) = generate(&cfg, &mut Sources::builtin().unwrap());
    let rows = records(&bytes);
    // Devices each user's legitimate logins used so far.
    let mut legit_devices: HashMap<String, HashSet<String>> = HashMap::new();
    let (mut legit, mut legit_bound, mut no_id) = (0u32, 0u32, 0u32);
    let (mut targeted, mut copied) = (0u32, 0u32);
    for r in &rows {
        let (user, device, binding) = (&r[COL_USER], &r[COL_DEVICE_ID], &r[COL_BINDING]);
        assert!(
            device.is_empty() || (device.starts_with('d') && device[1..].parse::<u32>().is_ok()),
            "{device}"
        );
        assert!(["", "key_verified"].contains(&binding), "{binding}");
        if r[COL_ATTACKER].is_empty() {
            legit += 1;
            no_id += u32::from(device.is_empty());
            if binding == "key_verified" {
                assert!(!device.is_empty());
                legit_bound += 1;
            }
            if !device.is_empty() {
                legit_devices
                    .entry(user.to_string())
                    .or_default()
                    .insert(device.to_string());
            }
            continue;
        }
        // No attacker ever shows a key.
        assert_eq!(binding, "", "{r:?}");
        let known = legit_devices.get(user).is_some_and(|d| d.contains(device));
        if &r[COL_ATTACKER] == "targeted" {
            targeted += 1;
            copied += u32::from(known);
        } else {
            assert!(!known, "only targeted attackers copy device ids: {r:?}");
        }
    }
    let bound_share = f64::from(legit_bound) / f64::from(legit);
    assert!((0.15..0.45).contains(&bound_share), "{bound_share}");
    let no_id_share = f64::from(no_id) / f64::from(legit);
    assert!((0.01..0.06).contains(&no_id_share), "{no_id_share}");
    // Most targeted attempts carry a device id the victim has used.
    assert!(
        targeted > 50 && copied * 2 > targeted,
        "{copied} of {targeted}"
    );

    // No bound users: no binding anywhere; the other columns are unchanged.
    cfg.bound_share = 0.0;
    let (unbound, _) = generate(&cfg, &mut Sources::builtin().unwrap());
    let unbound = records(&unbound);
    assert!(unbound.iter().all(|r| r[COL_BINDING].is_empty()));
    assert_eq!(unbound.len(), rows.len());
    for (a, b) in rows.iter().zip(&unbound) {
        assert_eq!(
            a.iter().take(17).collect::<Vec<_>>(),
            b.iter().take(17).collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_row_falls_inside_the_period_even_for_a_single_day() {
    for (days, users) in [(1, 1500), (2, 800)] {
        let mut cfg = SimConfig::new(9, users, days);
        cfg.attack_rate = 0.3;
        let (bytes, _) = generate(&cfg, &mut Sources::builtin().unwrap());
        let start = simulate::format_timestamp(cfg.start_day * 86_400_000);
        let end = simulate::format_timestamp((cfg.start_day + i64::from(days)) * 86_400_000);
        let rows = records(&bytes);
        let ts: Vec<&str> = rows.iter().map(|r| &r[COL_TS]).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(ts[0] >= start.as_str(), "{} < {start}", ts[0]);
        assert!(
            ts[ts.len() - 1] < end.as_str(),
            "{} >= {end}",
            ts[ts.len() - 1]
        );
    }
}

#[test]
fn attack_rows_follow_the_configured_rate_and_mix() {
    let mut cfg = SimConfig::new(11, 4000, 60);
    cfg.attack_rate = 0.05;
    cfg.mix =
        simulate::parse_mix("naive=2,vpn=1,targeted=1,stuffing=4,spray=1,bruteforce=1").unwrap();
    let (bytes, s) = generate(&cfg, &mut Sources::builtin().unwrap());
    let rows = records(&bytes);
    let mut counts: HashMap<String, u64> = HashMap::new();
    for r in &rows {
        *counts.entry(r[COL_ATTACKER].to_string()).or_default() += 1;
    }
    let attacks = rows.len() as u64 - counts[""];
    assert_eq!(attacks, s.attack_total());
    let rate = attacks as f64 / rows.len() as f64;
    assert!((rate - 0.05).abs() < 0.005, "attack rate {rate}");
    let total_w = 10.0;
    for (label, w) in [
        ("naive", 2.0),
        ("vpn", 1.0),
        ("targeted", 1.0),
        ("stuffing", 4.0),
        ("spray", 1.0),
        ("bruteforce", 1.0),
    ] {
        let share = counts.get(label).copied().unwrap_or(0) as f64 / attacks as f64;
        let want = w / total_w;
        assert!(
            (share - want).abs() < 0.2 * want,
            "{label}: share {share:.3}, configured {want:.3}"
        );
    }
    assert!(s.takeovers > 0);
    // A zero rate means no attack rows at all.
    let mut none = SimConfig::new(11, 500, 20);
    none.attack_rate = 0.0;
    let (_, s0) = generate(&none, &mut Sources::builtin().unwrap());
    assert_eq!(s0.attack_total(), 0);
}

#[test]
fn attackers_behave_as_their_models_say() {
    let mut cfg = SimConfig::new(17, 3000, 45);
    cfg.attack_rate = 0.08;
    let (bytes, _) = generate(&cfg, &mut Sources::builtin().unwrap());
    let rows = records(&bytes);
    // Where each legitimate user logs in from, the usual country, and the
    // OS families used.
    let mut places: HashMap<&str, HashMap<(&str, &str), u32>> = HashMap::new();
    let mut oses: HashMap<&str, HashSet<&str>> = HashMap::new();
    for r in rows.iter().filter(|r| r[COL_ATTACKER].is_empty()) {
        *places
            .entry(&r[COL_USER])
            .or_default()
            .entry((&r[COL_COUNTRY], &r[COL_CITY]))
            .or_default() += 1;
        let family = r[COL_OS].split(' ').next().unwrap_or("");
        oses.entry(&r[COL_USER]).or_default().insert(family);
    }
    let usual = |u: &str| {
        places
            .get(u)
            .and_then(|m| m.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k))
    };
    let (mut targeted, mut same_city, mut same_os) = (0, 0, 0);
    let (mut vpn, mut vpn_same_country) = (0, 0);
    let mut brute_ips: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut spray_users: HashMap<&str, HashSet<&str>> = HashMap::new();
    for r in rows.iter() {
        let Some(h) = usual(&r[COL_USER]) else {
            continue;
        };
        match &r[COL_ATTACKER] {
            "targeted" => {
                targeted += 1;
                let place = (&r[COL_COUNTRY], &r[COL_CITY]);
                same_city += usize::from(places[&r[COL_USER]].contains_key(&place));
                let family = r[COL_OS].split(' ').next().unwrap_or("");
                same_os += usize::from(oses[&r[COL_USER]].contains(family));
            }
            "vpn" => {
                vpn += 1;
                vpn_same_country += usize::from(&r[COL_COUNTRY] == h.0);
            }
            "bruteforce" => {
                brute_ips
                    .entry(&r[COL_USER])
                    .or_default()
                    .insert(&r[COL_IP]);
            }
            _ => {}
        }
    }
    for r in rows.iter().filter(|r| &r[COL_ATTACKER] == "spray") {
        spray_users
            .entry(&r[COL_IP])
            .or_default()
            .insert(&r[COL_USER]);
    }
    assert!(targeted > 50, "{targeted}");
    // A city and an OS family the victim logs in from: nearly always.
    assert!(same_city * 10 >= targeted * 9, "{same_city}/{targeted}");
    assert!(same_os * 10 >= targeted * 9, "{same_os}/{targeted}");
    assert!(vpn_same_country * 10 >= vpn * 9, "{vpn_same_country}/{vpn}");
    // Brute force: one address per victim; spray: one address, many users.
    assert!(brute_ips.values().all(|ips| ips.len() == 1));
    assert!(spray_users.values().any(|users| users.len() >= 10));
}

#[test]
fn history_sizes_cover_every_bucket() {
    let (bytes, s) = generate(
        &SimConfig::new(9, 3000, 30),
        &mut Sources::builtin().unwrap(),
    );
    assert_eq!(s.users, 3000);
    assert!(s.history.iter().all(|&n| n > 0), "{:?}", s.history);
    assert_eq!(s.history.iter().sum::<u64>(), 3000);
    // Recount from the CSV: every user logged in at least once.
    let rows = records(&bytes);
    let mut per_user: HashMap<&str, u64> = HashMap::new();
    for r in rows.iter().filter(|r| r[COL_ATTACKER].is_empty()) {
        *per_user.entry(&r[COL_USER]).or_default() += 1;
    }
    assert_eq!(per_user.len(), 3000);
    let mut buckets = [0u64; 4];
    for n in per_user.values() {
        buckets[match n {
            1..=4 => 0,
            5..=12 => 1,
            13..=39 => 2,
            _ => 3,
        }] += 1;
    }
    assert_eq!(buckets, s.history);
    // Most users are light, a few heavy (a long tail).
    assert!(buckets[0] > buckets[1] && buckets[1] > buckets[3]);
}

#[test]
fn the_datasets_quirks_appear_at_small_rates() {
    let (bytes, s) = generate(
        &SimConfig::new(21, 5000, 30),
        &mut Sources::builtin().unwrap(),
    );
    let rows = records(&bytes);
    let n = rows.len() as f64;
    let count = |f: &dyn Fn(&csv::StringRecord) -> bool| rows.iter().filter(|r| f(r)).count();
    let empty_rtt = count(&|r| r[COL_RTT].is_empty());
    let dash = count(&|r| &r[COL_REGION] == "-" || &r[COL_CITY] == "-");
    let ten = count(&|r| r[COL_IP].starts_with("10."));
    let big_asn = count(&|r| r[COL_ASN].parse::<u32>().unwrap() >= 500_000);
    let unparsable = count(&|r| r[COL_DEVICE].is_empty());
    for (name, k, max) in [
        ("empty RTT", empty_rtt, 0.05),
        ("`-` location", dash, 0.08),
        ("10.x address", ten, 0.02),
        ("ASN >= 500000", big_asn, 0.02),
        ("unparsable UA", unparsable, 0.02),
    ] {
        assert!(k > 0 && (k as f64) < max * n, "{name}: {k} of {n}");
    }
    assert_eq!(s.empty_rtt, empty_rtt as u64);
    assert_eq!(s.unparsable_ua, unparsable as u64);
    // An unparsable string is a real oddity, not a normal browser.
    assert!(
        rows.iter()
            .filter(|r| r[COL_DEVICE].is_empty())
            .all(|r| !r[COL_UA].contains("AppleWebKit"))
    );
}

#[test]
fn is_attack_ip_marks_exactly_the_listed_addresses() {
    let Some(mut sources) = data_sources() else {
        return;
    };
    let mut cfg = SimConfig::new(23, 800, 20);
    cfg.attack_rate = 0.1;
    let (bytes, s) = generate(&cfg, &mut sources);
    let world = sources.world();
    let rows = records(&bytes);
    let mut flagged = 0;
    for r in &rows {
        let ip = u32::from(r[COL_IP].parse::<Ipv4Addr>().unwrap());
        if r[COL_IP].starts_with("10.") {
            continue;
        }
        assert_eq!(
            parse_bool(&r[COL_ATTACK_IP]),
            world.bad.contains(ip),
            "{}",
            &r[COL_IP]
        );
        flagged += usize::from(parse_bool(&r[COL_ATTACK_IP]));
    }
    // Attackers often come from listed addresses; legitimate users rarely.
    assert!(
        s.attack_ip_rows.0 * 10 > s.attack_total(),
        "{:?}",
        s.attack_ip_rows
    );
    assert!(
        s.attack_ip_rows.1 * 100 < s.legit_rows,
        "{:?}",
        s.attack_ip_rows
    );
    assert!(flagged > 0);
}

#[test]
fn the_built_in_table_agrees_with_maxminds_asn_test_data() {
    let Some(dir) = Sources::locate(None).filter(|d| d.is_dir()) else {
        return;
    };
    let path = dir.join("maxmind/source-data/GeoLite2-ASN-Test.json");
    let list: Vec<HashMap<String, serde_json::Value>> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let world = Sources::builtin().unwrap();
    let world = world.world();
    let mut checked = 0;
    for (net, rec) in list.iter().flat_map(|m| m.iter()) {
        let Some((first, last)) = simulate::parse_cidr(net, false) else {
            continue;
        };
        let asn = rec["autonomous_system_number"].as_u64().unwrap() as u32;
        for ip in [first, last] {
            if let Some(n) = world.network(ip) {
                assert_eq!(n.asn, asn, "{net}: table says {} `{}`", n.asn, n.name);
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked}");
}

fn riskgate(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riskgate"));
    cmd.args(args).env_remove(simulate::DATA_ENV);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_falls_back_to_built_in_tables_and_reports_its_sources() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let args = ["simulate", "--seed", "4", "--users", "200", "--days", "7"];
    let (code, out, err) = riskgate(&[&args[..], &["--data-dir", dir]].concat(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("woothee") && err.contains("stand-in bad list"),
        "{err}"
    );
    assert!(err.contains("rows ") && err.contains("40+:"), "{err}");
    let rows = records(&out);
    assert!(!rows.is_empty());

    // The same through the environment variable; --builtin ignores it.
    let (_, out_env, _) = riskgate(&args, &[(simulate::DATA_ENV, dir)]);
    assert_eq!(out, out_env);
    let (code, out_builtin, err) = riskgate(
        &[&args[..], &["--builtin"]].concat(),
        &[(simulate::DATA_ENV, "/nonexistent/riskgate-data")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("built-in world table, stand-in bad list"),
        "{err}"
    );
    records(&out_builtin);

    // --out FILE writes the same bytes.
    let file = empty.path().join("out.csv");
    let f = file.to_str().unwrap();
    let (code, _, _) = riskgate(&[&args[..], &["--data-dir", dir, "--out", f]].concat(), &[]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&file).unwrap(), out);
}

#[test]
fn the_cli_rejects_bad_settings_with_the_usage_exit_code() {
    for bad in [
        &["--data-dir", "/nonexistent/riskgate-data"][..],
        &["--attack-rate", "1.5"],
        &["--attack-mix", "phishing=1"],
        &["--users", "0"],
        &["--start", "2026-13-01"],
    ] {
        let (code, _, err) = riskgate(&[&["simulate", "--days", "1"][..], bad].concat(), &[]);
        assert_eq!(code, 64, "{bad:?}: {err}");
        assert!(err.contains('`'), "{err}");
    }
}
