//! Tests for the geo module: official MaxMind test databases (read from the
//! shared data directory, never copied), project-made fixtures written with
//! `mmdb-writer`, hot reload, corrupt files and concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::core::inputs::GeoSources;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, UNIX_EPOCH};

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};
use serde_json::Value as Json;

// ---------------------------------------------------------------------------
// Helpers

/// `$RISKGATE_SHARED_DATA/maxmind`, defaulting to
/// `$CARGO_MANIFEST_DIR/../shared/data/maxmind`. Missing data fails under
/// `CI=true` and is skipped (with a note) otherwise.
fn maxmind_dir(test: &str) -> Option<PathBuf> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let dir = base.join("maxmind");
    if dir.join("test-data").is_dir() && dir.join("source-data").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: shared MaxMind test data not found at `{}` (set RISKGATE_SHARED_DATA)",
            dir.display()
        );
    }
    eprintln!(
        "note: {test}: skipped, shared MaxMind test data not found at `{}`",
        dir.display()
    );
    None
}

/// Runs `f` on its own thread and fails if it panics or takes longer than
/// `secs` seconds.
fn within_secs<T: Send + 'static>(
    what: &str,
    secs: u64,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            handle.join().unwrap();
            v
        }
        Err(RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {secs} s"),
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => panic!("{what}: worker ended without a result"),
        },
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn open(city: Option<&Path>, asn: Option<&Path>, anonymous: Option<&Path>) -> GeoResolver {
    GeoResolver::open(&GeoPaths {
        city: city.map(Path::to_path_buf),
        asn: asn.map(Path::to_path_buf),
        anonymous: anonymous.map(Path::to_path_buf),
    })
    .unwrap()
}

fn open_err(kind: GeoDbKind, path: &Path, options: &GeoOptions) -> GeoError {
    let mut paths = GeoPaths::default();
    let slot = match kind {
        GeoDbKind::City => &mut paths.city,
        GeoDbKind::Asn => &mut paths.asn,
        GeoDbKind::Anonymous => &mut paths.anonymous,
    };
    *slot = Some(path.to_path_buf());
    match GeoResolver::open_with(&paths, options) {
        Ok(_) => panic!("{kind} `{}` opened but should not", path.display()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// Fixture writer (mmdb-writer)

fn writer(db_type: &str, ip_version: IpVersion, epoch: u64) -> Writer {
    Writer::builder(db_type)
        .description(&[("en", "riskgate test fixture")])
        .ip_version(ip_version)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(epoch))
        .build()
}

fn insert(w: &mut Writer, net: &str, value: Value) {
    w.insert_value(net.parse::<IpNet>().unwrap(), value)
        .unwrap();
}

fn names(en: &str) -> Value {
    Value::map([
        ("en", Value::from(en)),
        ("de", Value::from(format!("{en}-de"))),
    ])
}

fn city_value(
    country: &str,
    regions: &[&str],
    city: Option<&str>,
    location: Option<(f64, f64, Option<u16>)>,
) -> Value {
    let mut m: Vec<(&str, Value)> = vec![
        (
            "country",
            Value::map([
                ("iso_code", Value::from(country)),
                ("names", names(country)),
            ]),
        ),
        (
            "continent",
            Value::map([("code", Value::from("EU")), ("names", names("Europe"))]),
        ),
    ];
    if !regions.is_empty() {
        m.push((
            "subdivisions",
            Value::array(
                regions
                    .iter()
                    .map(|r| Value::map([("iso_code", Value::from(*r)), ("names", names(r))])),
            ),
        ));
    }
    if let Some(city) = city {
        m.push((
            "city",
            Value::map([("geoname_id", Value::from(42_u32)), ("names", names(city))]),
        ));
    }
    if let Some((lat, lon, radius)) = location {
        let mut loc = vec![
            ("latitude", Value::from(lat)),
            ("longitude", Value::from(lon)),
            ("time_zone", Value::from("Europe/London")),
        ];
        if let Some(r) = radius {
            loc.push(("accuracy_radius", Value::from(r)));
        }
        m.push(("location", Value::map(loc)));
    }
    Value::map(m)
}

fn asn_value(asn: u32, org: &str) -> Value {
    Value::map([
        ("autonomous_system_number", Value::from(asn)),
        ("autonomous_system_organization", Value::from(org)),
    ])
}

fn anon_value(flags: &[&str]) -> Value {
    Value::map(flags.iter().map(|f| (*f, Value::from(true))))
}

fn fixture_city(epoch: u64) -> Vec<u8> {
    let mut w = writer("GeoIP2-City", IpVersion::V6, epoch);
    insert(
        &mut w,
        "192.0.2.0/24",
        city_value(
            "GB",
            &["ENG", "LND"],
            Some("London"),
            Some((51.5142, -0.0931, Some(20))),
        ),
    );
    insert(
        &mut w,
        "198.51.100.0/25",
        city_value(
            "SE",
            &["E"],
            Some("Linköping"),
            Some((58.4167, 15.6167, Some(76))),
        ),
    );
    // Coordinates without a radius, and a country-only record.
    insert(
        &mut w,
        "198.51.100.128/25",
        city_value("FR", &[], None, Some((48.85, 2.35, None))),
    );
    insert(&mut w, "203.0.113.0/24", city_value("DE", &[], None, None));
    // Out-of-range coordinates are dropped.
    insert(
        &mut w,
        "100.64.0.0/10",
        city_value("US", &["CA"], Some("Nowhere"), Some((123.0, 7.0, Some(5)))),
    );
    insert(
        &mut w,
        "2001:db8::/32",
        city_value(
            "JP",
            &["13"],
            Some("Tokyo"),
            Some((35.6895, 139.6917, Some(100))),
        ),
    );
    w.to_bytes().unwrap()
}

fn fixture_asn(epoch: u64) -> Vec<u8> {
    let mut w = writer("GeoLite2-ASN", IpVersion::V6, epoch);
    insert(&mut w, "192.0.2.0/24", asn_value(64_496, "Example Transit"));
    insert(
        &mut w,
        "198.51.100.0/24",
        asn_value(64_497, "Example Hosting"),
    );
    // ASN without an organisation.
    insert(
        &mut w,
        "203.0.113.0/24",
        Value::map([("autonomous_system_number", Value::from(64_498_u32))]),
    );
    insert(&mut w, "2001:db8::/32", asn_value(64_499, "Example v6"));
    w.to_bytes().unwrap()
}

fn fixture_anonymous(epoch: u64) -> Vec<u8> {
    let mut w = writer("GeoIP2-Anonymous-IP", IpVersion::V6, epoch);
    insert(
        &mut w,
        "192.0.2.0/25",
        anon_value(&["is_anonymous", "is_anonymous_vpn"]),
    );
    insert(
        &mut w,
        "192.0.2.128/25",
        anon_value(&["is_anonymous", "is_tor_exit_node", "is_public_proxy"]),
    );
    insert(
        &mut w,
        "198.51.100.0/24",
        anon_value(&["is_anonymous", "is_hosting_provider"]),
    );
    insert(
        &mut w,
        "2001:db8:1::/48",
        anon_value(&["is_anonymous", "is_residential_proxy"]),
    );
    w.to_bytes().unwrap()
}

/// A one-network city database answering `country` for 10.0.0.0/8.
fn fixture_country(country: &str, epoch: u64) -> Vec<u8> {
    let mut w = writer("GeoIP2-City", IpVersion::V6, epoch);
    insert(&mut w, "10.0.0.0/8", city_value(country, &[], None, None));
    w.to_bytes().unwrap()
}

/// Writes `bytes` to a temp file beside `path` and renames it over `path`.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Fixtures {
    _dir: tempfile::TempDir,
    city: PathBuf,
    asn: PathBuf,
    anonymous: PathBuf,
}

fn fixtures() -> Fixtures {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city.mmdb");
    let asn = dir.path().join("asn.mmdb");
    let anonymous = dir.path().join("anonymous.mmdb");
    std::fs::write(&city, fixture_city(1_700_000_000)).unwrap();
    std::fs::write(&asn, fixture_asn(1_700_000_000)).unwrap();
    std::fs::write(&anonymous, fixture_anonymous(1_700_000_000)).unwrap();
    Fixtures {
        _dir: dir,
        city,
        asn,
        anonymous,
    }
}

// ---------------------------------------------------------------------------
// Project-made fixtures

#[test]
fn fixture_lookups_merge_all_three_databases() {
    let f = fixtures();
    let r = open(Some(&f.city), Some(&f.asn), Some(&f.anonymous));
    assert!(!r.is_empty());

    let london = r.lookup_uncached(ip("192.0.2.1"));
    assert_eq!(
        london,
        GeoInfo {
            country: Some("GB".into()),
            region: Some("ENG".into()),
            city: Some("London".into()),
            location: Some((51.5142, -0.0931, 20.0)),
            asn: Some(64_496),
            asn_org: Some("Example Transit".into()),
            anonymous: true,
            vpn: true,
            sources: GeoSources {
                city: true,
                asn: true,
                anonymous: true
            },
            ..GeoInfo::default()
        }
    );

    let tor = r.lookup_uncached(ip("192.0.2.200"));
    assert!(tor.anonymous && tor.tor && tor.public_proxy);
    assert!(!tor.vpn && !tor.hosting && !tor.residential_proxy);

    let sweden = r.lookup_uncached(ip("198.51.100.5"));
    assert_eq!(sweden.country.as_deref(), Some("SE"));
    assert_eq!(sweden.region.as_deref(), Some("E"));
    assert_eq!(sweden.city.as_deref(), Some("Linköping"));
    assert_eq!(sweden.asn_org.as_deref(), Some("Example Hosting"));
    assert!(sweden.hosting && sweden.anonymous && !sweden.vpn);

    // Coordinates without a radius get the documented default.
    let paris = r.lookup_uncached(ip("198.51.100.200"));
    assert_eq!(paris.country.as_deref(), Some("FR"));
    assert_eq!(paris.region, None);
    assert_eq!(paris.city, None);
    assert_eq!(
        paris.location,
        Some((48.85, 2.35, DEFAULT_ACCURACY_RADIUS_KM))
    );

    // Country only; ASN without organisation; not in the anonymous db.
    let de = r.lookup_uncached(ip("203.0.113.9"));
    assert_eq!(de.country.as_deref(), Some("DE"));
    assert_eq!(de.location, None);
    assert_eq!(de.asn, Some(64_498));
    assert_eq!(de.asn_org, None);
    assert_eq!(
        de.sources,
        GeoSources {
            city: true,
            asn: true,
            anonymous: false
        }
    );
    assert!(!de.anonymous);

    // Out-of-range latitude: location dropped, the rest kept.
    let bad_loc = r.lookup_uncached(ip("100.64.1.1"));
    assert_eq!(bad_loc.city.as_deref(), Some("Nowhere"));
    assert_eq!(bad_loc.location, None);

    // IPv6.
    let tokyo = r.lookup_uncached(ip("2001:db8:1::7"));
    assert_eq!(tokyo.country.as_deref(), Some("JP"));
    assert_eq!(tokyo.region.as_deref(), Some("13"));
    assert_eq!(tokyo.location, Some((35.6895, 139.6917, 100.0)));
    assert_eq!(tokyo.asn, Some(64_499));
    assert!(tokyo.residential_proxy && tokyo.anonymous);
    let tokyo2 = r.lookup_uncached(ip("2001:db8:2::7"));
    assert!(!tokyo2.residential_proxy);
    assert_eq!(tokyo2.country.as_deref(), Some("JP"));

    // IPv4-mapped IPv6 answers as IPv4, cached or not.
    assert_eq!(r.lookup_uncached(ip("::ffff:192.0.2.1")), london);
    assert_eq!(*r.lookup(ip("::ffff:192.0.2.1")), london);
    assert_eq!(*r.lookup(ip("192.0.2.1")), london);

    // Not in any database.
    for miss in [
        "8.8.8.8",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "2606:4700::1",
    ] {
        assert_eq!(r.lookup_uncached(ip(miss)), GeoInfo::default(), "{miss}");
        assert_eq!(*r.lookup(ip(miss)), GeoInfo::default(), "{miss}");
    }
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn fixture_databases_report_metadata() {
    let f = fixtures();
    let r = open(Some(&f.city), None, Some(&f.anonymous));
    let dbs = r.databases();
    assert_eq!(dbs.len(), 2);
    assert_eq!(dbs[0].0, GeoDbKind::City);
    assert_eq!(dbs[0].1.database_type, "GeoIP2-City");
    assert_eq!(dbs[0].1.build_epoch, 1_700_000_000);
    assert_eq!(dbs[0].1.ip_version, 6);
    assert_eq!(dbs[1].0, GeoDbKind::Anonymous);
    let shown = dbs[0].1.to_string();
    assert!(
        shown.starts_with("GeoIP2-City built 2023-11-14T22:13:20Z (epoch 1700000000), ipv6,"),
        "{shown}"
    );
    // Only the configured databases answer.
    let info = r.lookup_uncached(ip("192.0.2.1"));
    assert!(info.sources.city && !info.sources.asn && info.sources.anonymous);
    assert_eq!(info.asn, None);
    assert!(format!("{r:?}").contains("GeoIP2-Anonymous-IP"));
}

#[test]
fn ipv4_only_database_answers_ipv4_and_ignores_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asn4.mmdb");
    let mut w = writer("GeoLite2-ASN", IpVersion::V4, 1);
    insert(&mut w, "192.0.2.0/24", asn_value(64_500, "Four"));
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let r = open(None, Some(&path), None);
    assert_eq!(r.lookup_uncached(ip("192.0.2.1")).asn, Some(64_500));
    assert_eq!(r.lookup_uncached(ip("::ffff:192.0.2.1")).asn, Some(64_500));
    assert_eq!(r.lookup_uncached(ip("2001:db8::1")), GeoInfo::default());
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn empty_resolver_answers_nothing() {
    let r = GeoResolver::open(&GeoPaths::default()).unwrap();
    assert!(r.is_empty());
    assert_eq!(*r.lookup(ip("81.2.69.142")), GeoInfo::default());
    assert_eq!(r.lookup_uncached(ip("::1")), GeoInfo::default());
    assert!(r.reload_changed().is_empty());
    assert!(r.reload_all().is_empty());
    assert!(r.databases().is_empty());
}

#[test]
fn cache_disabled_still_answers() {
    let f = fixtures();
    let options = GeoOptions {
        cache_capacity: 0,
        ..GeoOptions::default()
    };
    let r = GeoResolver::open_with(
        &GeoPaths {
            city: Some(f.city.clone()),
            ..GeoPaths::default()
        },
        &options,
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(r.lookup(ip("192.0.2.1")).country.as_deref(), Some("GB"));
    }
}

#[test]
fn resolver_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<GeoResolver>();
    assert_send_sync::<GeoError>();
    assert_send_sync::<ReloadResult>();
}

#[test]
fn open_errors_name_the_path_and_the_problem() {
    let f = fixtures();
    let dir = f.city.parent().unwrap().to_path_buf();
    let opts = GeoOptions::default();

    let missing = dir.join("nope.mmdb");
    let e = open_err(GeoDbKind::City, &missing, &opts);
    assert!(matches!(e, GeoError::Io { .. }), "{e:?}");
    assert_eq!(e.path(), missing);
    assert_eq!(e.kind(), GeoDbKind::City);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "city database `{}`: cannot read file:",
            missing.display()
        )),
        "{msg}"
    );

    let e = open_err(GeoDbKind::Asn, &dir, &opts);
    assert!(matches!(e, GeoError::NotAFile { .. }), "{e:?}");
    assert!(e.to_string().contains("not a regular file"), "{e}");

    let garbage = dir.join("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a maxmind database at all").unwrap();
    let e = open_err(GeoDbKind::Anonymous, &garbage, &opts);
    assert!(matches!(e, GeoError::Invalid { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "anonymous database `{}`: not a valid maxmind db:",
            garbage.display()
        )),
        "{msg}"
    );

    let empty = dir.join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        open_err(GeoDbKind::City, &empty, &opts),
        GeoError::Invalid { .. }
    ));

    let small = GeoOptions {
        max_file_size: 100,
        ..GeoOptions::default()
    };
    let e = open_err(GeoDbKind::City, &f.city, &small);
    assert!(matches!(e, GeoError::TooLarge { max: 100, .. }), "{e:?}");

    // A fault in a later slot fails the whole open.
    let e = GeoResolver::open(&GeoPaths {
        city: Some(f.city.clone()),
        asn: Some(missing.clone()),
        anonymous: None,
    })
    .unwrap_err();
    assert_eq!(e.kind(), GeoDbKind::Asn);

    // All messages start lowercase.
    for e in [
        open_err(GeoDbKind::City, &missing, &opts),
        open_err(GeoDbKind::City, &dir, &opts),
        open_err(GeoDbKind::City, &garbage, &opts),
        open_err(GeoDbKind::City, &f.asn, &opts),
        open_err(GeoDbKind::City, &f.city, &small),
    ] {
        let msg = e.to_string();
        assert!(msg.starts_with(char::is_lowercase), "{msg}");
        assert!(msg.contains('`'), "{msg}");
    }
}

#[test]
fn fixture_of_the_wrong_type_is_rejected() {
    let f = fixtures();
    let opts = GeoOptions::default();
    let e = open_err(GeoDbKind::City, &f.asn, &opts);
    let GeoError::WrongType {
        ref found,
        ref expected,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(found, "GeoLite2-ASN");
    assert!(expected.contains("`City`"), "{expected}");
    assert!(
        e.to_string().contains("database type `GeoLite2-ASN`"),
        "{e}"
    );
    assert!(matches!(
        open_err(GeoDbKind::Asn, &f.anonymous, &opts),
        GeoError::WrongType { .. }
    ));
    assert!(matches!(
        open_err(GeoDbKind::Anonymous, &f.city, &opts),
        GeoError::WrongType { .. }
    ));
}

#[test]
fn type_rules_are_as_documented() {
    for t in [
        "GeoIP2-City",
        "GeoLite2-City",
        "GeoIP2-City-Shield",
        "GeoIP2-Enterprise",
        "GeoIP2-Precision-Enterprise",
        "GeoIP2-Country",
        "GeoLite2-Country",
        "DBIP-City-Lite",
    ] {
        assert!(GeoDbKind::City.accepts(t), "{t}");
    }
    for t in ["GeoLite2-ASN", "GeoIP2-ISP", "DBIP-ASN-Lite"] {
        assert!(GeoDbKind::Asn.accepts(t), "{t}");
        assert!(!GeoDbKind::City.accepts(t), "{t}");
    }
    for t in ["GeoIP2-Anonymous-IP", "GeoIP-Anonymous-Plus"] {
        assert!(GeoDbKind::Anonymous.accepts(t), "{t}");
        assert!(!GeoDbKind::Asn.accepts(t), "{t}");
    }
    for t in ["GeoIP2-Connection-Type", "GeoIP2-Domain", "Test", ""] {
        assert!(!GeoDbKind::City.accepts(t), "{t}");
        assert!(!GeoDbKind::Asn.accepts(t), "{t}");
        assert!(!GeoDbKind::Anonymous.accepts(t), "{t}");
    }
}

#[test]
fn only_the_first_subdivision_is_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    let mut w = writer("GeoLite2-City", IpVersion::V6, 1);
    // mmdb-writer 0.1.0 mis-encodes arrays of 29 or more elements (it puts
    // the size-extension byte before the extended-type byte), so stay below.
    let many: Vec<String> = (0..28).map(|i| format!("R{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    insert(&mut w, "192.0.2.0/24", city_value("GB", &many, None, None));
    insert(
        &mut w,
        "198.51.100.0/24",
        Value::map([("subdivisions", Value::Array(vec![]))]),
    );
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let r = open(Some(&path), None, None);
    assert_eq!(
        r.lookup_uncached(ip("192.0.2.1")).region.as_deref(),
        Some("R0")
    );
    let empty = r.lookup_uncached(ip("198.51.100.1"));
    assert_eq!(empty.region, None);
    assert_eq!(empty.country, None);
    assert!(empty.sources.city);
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn record_with_wrong_field_types_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asn.mmdb");
    let mut w = writer("GeoLite2-ASN", IpVersion::V6, 1);
    insert(&mut w, "192.0.2.0/24", asn_value(64_501, "Good"));
    insert(
        &mut w,
        "198.51.100.0/24",
        Value::map([("autonomous_system_number", Value::from("not a number"))]),
    );
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let r = open(None, Some(&path), None);
    let bad = r.lookup_uncached(ip("198.51.100.1"));
    assert_eq!(bad, GeoInfo::default());
    assert_eq!(r.lookup_errors(), 1);
    assert_eq!(r.lookup_uncached(ip("192.0.2.1")).asn, Some(64_501));
    assert_eq!(r.lookup_errors(), 1);
}

// ---------------------------------------------------------------------------
// Hot reload

#[test]
fn reload_swaps_in_new_file_and_keeps_old_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, fixture_country("AA", 1_000)).unwrap();
    let r = open(Some(&path), None, None);
    let addr = ip("10.1.2.3");
    assert_eq!(r.lookup(addr).country.as_deref(), Some("AA"));
    assert!(r.reload_changed().is_empty(), "nothing changed yet");

    // A valid replacement is picked up and the cache is cleared.
    replace(&path, &fixture_country("BB", 2_000));
    let results = r.reload_changed();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].kind, GeoDbKind::City);
    assert_eq!(results[0].path, path);
    let info = results[0].outcome.as_ref().unwrap();
    assert_eq!(info.build_epoch, 2_000);
    assert!(info.to_string().contains("epoch 2000"), "{info}");
    assert_eq!(r.lookup(addr).country.as_deref(), Some("BB"));
    assert_eq!(r.lookup_uncached(addr).country.as_deref(), Some("BB"));
    assert!(r.reload_changed().is_empty());

    // Garbage: an error once, the previous database keeps answering.
    replace(&path, b"\x00\x01garbage garbage garbage\xff");
    let results = r.reload_changed();
    assert_eq!(results.len(), 1);
    let e = results[0].outcome.as_ref().unwrap_err();
    assert!(matches!(e, GeoError::Invalid { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!("`{}`", path.display())),
        "{e}"
    );
    assert_eq!(r.lookup(addr).country.as_deref(), Some("BB"));
    assert_eq!(r.lookup_uncached(addr).country.as_deref(), Some("BB"));
    assert!(
        r.reload_changed().is_empty(),
        "a failed version is reported once"
    );
    assert_eq!(r.databases()[0].1.build_epoch, 2_000);

    // A database of the wrong type is rejected the same way.
    replace(&path, &fixture_asn(3_000));
    let results = r.reload_changed();
    assert!(matches!(
        results[0].outcome,
        Err(GeoError::WrongType { .. })
    ));
    assert_eq!(r.lookup(addr).country.as_deref(), Some("BB"));

    // Deleted: an error once, then recovery when it comes back.
    std::fs::remove_file(&path).unwrap();
    let results = r.reload_changed();
    assert!(matches!(results[0].outcome, Err(GeoError::Io { .. })));
    assert!(r.reload_changed().is_empty());
    assert_eq!(r.lookup(addr).country.as_deref(), Some("BB"));
    replace(&path, &fixture_country("CC", 4_000));
    let results = r.reload_changed();
    assert_eq!(results[0].outcome.as_ref().unwrap().build_epoch, 4_000);
    assert_eq!(r.lookup(addr).country.as_deref(), Some("CC"));

    // reload_all reloads unchanged files too.
    let results = r.reload_all();
    assert_eq!(results.len(), 1);
    assert!(results[0].outcome.is_ok());
    assert_eq!(r.lookup(addr).country.as_deref(), Some("CC"));
}

#[test]
fn reload_detects_in_place_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asn.mmdb");
    std::fs::write(&path, fixture_asn(1)).unwrap();
    let r = open(None, Some(&path), None);
    assert_eq!(r.lookup(ip("192.0.2.1")).asn, Some(64_496));
    let mut w = writer("GeoLite2-ASN", IpVersion::V6, 2);
    insert(&mut w, "192.0.2.0/24", asn_value(65_000, "Rewritten"));
    // Same inode, different length and mtime.
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let results = r.reload_changed();
    assert_eq!(results.len(), 1);
    assert!(results[0].outcome.is_ok());
    assert_eq!(r.lookup(ip("192.0.2.1")).asn, Some(65_000));
}

#[test]
fn reload_under_concurrent_lookups_never_serves_stale_answers() {
    within_secs("concurrent reload", 60, || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        let aa = fixture_country("AA", 1);
        let bb = fixture_country("BB", 2);
        std::fs::write(&path, &aa).unwrap();
        let r = Arc::new(open(Some(&path), None, None));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let r = Arc::clone(&r);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut n = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        let addr = IpAddr::V4(Ipv4Addr::new(10, t, (n % 7) as u8, 1));
                        let c = r.lookup(addr).country.clone();
                        assert!(matches!(c.as_deref(), Some("AA" | "BB")), "{c:?}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for round in 0..30 {
            let (bytes, want) = if round % 2 == 0 {
                (&bb, "BB")
            } else {
                (&aa, "AA")
            };
            replace(&path, bytes);
            let results = r.reload_changed();
            assert_eq!(results.len(), 1, "round {round}");
            assert!(results[0].outcome.is_ok(), "round {round}");
            // Right after the swap, no reader's earlier answer is served.
            for t in 0..3 {
                for k in 0..7 {
                    let addr = IpAddr::V4(Ipv4Addr::new(10, t, k, 1));
                    assert_eq!(
                        r.lookup(addr).country.as_deref(),
                        Some(want),
                        "round {round}"
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let total: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(total > 0);
    });
}

// ---------------------------------------------------------------------------
// Robustness: mutated fixtures (property test)

#[test]
fn mutated_fixture_never_panics_or_hangs() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    within_secs("mutated fixtures", 120, || {
        let original = fixture_city(1);
        // Mutate only bytes before the metadata marker so the database type
        // survives and lookups are reached.
        let marker = b"\xab\xcd\xefMaxMind.com";
        let meta_at = original
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut runner = TestRunner::new(Config {
            cases: 200,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            proptest::collection::vec((0..meta_at, any::<u8>()), 1..8),
            any::<bool>(),
            proptest::collection::vec(any::<u32>(), 16),
        );
        let opened = std::cell::Cell::new(0_u32);
        runner
            .run(&strategy, |(edits, verify, addrs)| {
                let mut bytes = original.clone();
                for (at, b) in edits {
                    bytes[at] = b;
                }
                let path = dir.path().join("mutated.mmdb");
                std::fs::write(&path, &bytes).unwrap();
                let options = GeoOptions {
                    verify,
                    ..GeoOptions::default()
                };
                let paths = GeoPaths {
                    city: Some(path),
                    ..GeoPaths::default()
                };
                if let Ok(r) = GeoResolver::open_with(&paths, &options) {
                    opened.set(opened.get() + 1);
                    for a in addrs {
                        let _ = r.lookup(IpAddr::V4(Ipv4Addr::from(a)));
                        let _ = r.lookup_uncached(IpAddr::V6(Ipv6Addr::from(
                            u128::from(a) << 96 | u128::from(a),
                        )));
                    }
                    let _ = r.lookup(ip("192.0.2.1"));
                }
                Ok(())
            })
            .unwrap();
        assert!(opened.get() > 0, "some mutations should still open");
    });
}

#[test]
fn cached_and_uncached_agree_on_random_addresses() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let f = fixtures();
    let r = open(Some(&f.city), Some(&f.asn), Some(&f.anonymous));
    let mut runner = TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    });
    // Bias towards the fixture networks.
    let v4 = prop_oneof![
        any::<u32>(),
        (0_u32..256).prop_map(|x| 0xc000_0200 | x),
        (0_u32..256).prop_map(|x| 0xc633_6400 | x),
    ];
    runner
        .run(&(v4, any::<u128>()), |(a, b)| {
            for addr in [
                IpAddr::V4(Ipv4Addr::from(a)),
                IpAddr::V6(Ipv6Addr::from(b)),
                IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()),
            ] {
                let cached = r.lookup(addr);
                prop_assert_eq!(&*cached, &r.lookup_uncached(addr));
                prop_assert_eq!(&*r.lookup(addr), &*cached);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn epoch_formatting() {
    assert_eq!(format_epoch(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_epoch(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(format_epoch(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(format_epoch(253_402_300_799), "9999-12-31T23:59:59Z");
    assert_eq!(format_epoch(253_402_300_800), "?");
    assert_eq!(format_epoch(u64::MAX), "?");
}

// ---------------------------------------------------------------------------
// Official MaxMind test databases

#[test]
fn official_city_asn_anonymous_known_addresses() {
    let Some(mm) = maxmind_dir("official_city_asn_anonymous_known_addresses") else {
        return;
    };
    let td = mm.join("test-data");
    let r = open(
        Some(&td.join("GeoIP2-City-Test.mmdb")),
        Some(&td.join("GeoLite2-ASN-Test.mmdb")),
        Some(&td.join("GeoIP2-Anonymous-IP-Test.mmdb")),
    );

    let london = r.lookup(ip("81.2.69.142"));
    assert_eq!(london.country.as_deref(), Some("GB"));
    assert_eq!(london.region.as_deref(), Some("ENG"));
    assert_eq!(london.city.as_deref(), Some("London"));
    let (lat, lon, radius) = london.location.unwrap();
    assert!((lat - 51.5142).abs() < 1e-9 && (lon + 0.0931).abs() < 1e-9 && radius == 10.0);
    assert!(london.sources.city);

    let linkoping = r.lookup(ip("89.160.20.128"));
    assert_eq!(linkoping.country.as_deref(), Some("SE"));
    assert_eq!(linkoping.region.as_deref(), Some("E"));
    assert_eq!(linkoping.city.as_deref(), Some("Linköping"));
    assert!(linkoping.location.is_some());

    let telstra = r.lookup(ip("1.128.0.0"));
    assert_eq!(telstra.asn, Some(1221));
    assert_eq!(telstra.asn_org.as_deref(), Some("Telstra Pty Ltd"));
    assert!(telstra.sources.asn);

    let vpn = r.lookup(ip("1.2.3.4"));
    assert!(vpn.anonymous && vpn.vpn && !vpn.tor);
    let tor = r.lookup(ip("65.4.3.2"));
    assert!(tor.anonymous && tor.tor && !tor.vpn);
    assert!(
        !r.lookup(ip("65.8.0.0")).tor,
        "65.0.0.0/13 ends at 65.7.255.255"
    );

    // 81.2.69.0/24 carries every anonymous flag in the test data.
    assert!(
        london.anonymous
            && london.vpn
            && london.tor
            && london.hosting
            && london.public_proxy
            && london.residential_proxy
    );
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn official_country_and_enterprise_databases_fit_the_city_slot() {
    let Some(mm) = maxmind_dir("official_country_and_enterprise_databases_fit_the_city_slot")
    else {
        return;
    };
    let td = mm.join("test-data");
    let country = open(Some(&td.join("GeoIP2-Country-Test.mmdb")), None, None);
    let gb = country.lookup_uncached(ip("81.2.69.142"));
    assert_eq!(gb.country.as_deref(), Some("GB"));
    assert_eq!((gb.city, gb.location), (None, None));

    let enterprise = open(Some(&td.join("GeoIP2-Enterprise-Test.mmdb")), None, None);
    assert_eq!(
        enterprise
            .lookup_uncached(ip("81.2.69.160"))
            .country
            .as_deref(),
        Some("GB")
    );

    let isp = open(None, Some(&td.join("GeoIP2-ISP-Test.mmdb")), None);
    assert!(isp.lookup_uncached(ip("1.128.0.0")).asn.is_some());

    let plus = open(None, None, Some(&td.join("GeoIP-Anonymous-Plus-Test.mmdb")));
    assert!(plus.lookup_uncached(ip("1.2.0.1")).vpn);
}

#[test]
fn official_database_of_the_wrong_type_names_the_expected_type() {
    let Some(mm) = maxmind_dir("official_database_of_the_wrong_type_names_the_expected_type")
    else {
        return;
    };
    let td = mm.join("test-data");
    let opts = GeoOptions::default();
    let asn = td.join("GeoLite2-ASN-Test.mmdb");
    let e = open_err(GeoDbKind::City, &asn, &opts);
    let msg = e.to_string();
    assert!(matches!(e, GeoError::WrongType { .. }), "{e:?}");
    assert_eq!(
        msg,
        format!(
            "city database `{}`: database type `GeoLite2-ASN` does not fit the city slot \
             (expected a type containing `City` or `Enterprise` or `Country`)",
            asn.display()
        )
    );
    let e = open_err(GeoDbKind::Asn, &td.join("GeoIP2-City-Test.mmdb"), &opts);
    assert!(e.to_string().contains("`ASN` or `ISP`"), "{e}");
    let e = open_err(
        GeoDbKind::Anonymous,
        &td.join("GeoIP2-Connection-Type-Test.mmdb"),
        &opts,
    );
    assert!(e.to_string().contains("`Anonymous-IP`"), "{e}");
}

/// A parsed source-data network, in the 128-bit tree space: IPv4
/// (`1.2.0.0/16` or `::1.2.0.0/112`) lives under `::/96`.
#[derive(Clone, Copy, Debug)]
struct Net {
    base: u128,
    prefix: u32,
}

impl Net {
    fn parse(s: &str) -> Net {
        let (addr, len) = s.split_once('/').unwrap();
        let len: u32 = len.parse().unwrap();
        let (bits, prefix) = match addr.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), len + 96),
            IpAddr::V6(v6) => (u128::from(v6), len),
        };
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        Net {
            base: bits & mask,
            prefix,
        }
    }

    fn last(self) -> u128 {
        u128::MAX
            .checked_shr(self.prefix)
            .map_or(self.base, |host| self.base | host)
    }

    fn contains(self, a: u128) -> bool {
        a >= self.base && a <= self.last()
    }

    /// The address to query: IPv4 for the `::/96` range.
    fn addr(a: u128) -> IpAddr {
        match u32::try_from(a) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }
}

/// Entries of a source-data JSON file, in file order.
fn source_entries(mm: &Path, file: &str) -> Vec<(String, Net, Json)> {
    let text = std::fs::read_to_string(mm.join("source-data").join(file)).unwrap();
    let list: Vec<serde_json::Map<String, Json>> = serde_json::from_str(&text).unwrap();
    list.into_iter()
        .flat_map(|m| m.into_iter())
        .map(|(k, v)| (k.clone(), Net::parse(&k), v))
        .collect()
}

/// For every entry, its first and last address and which entry answers for
/// them: the most specific containing network (later wins a tie). Addresses
/// answered by a different entry are returned with that entry.
fn oracle_probes(entries: &[(String, Net, Json)]) -> Vec<(IpAddr, usize)> {
    let mut out = Vec::new();
    for (_, net, _) in entries {
        for a in [net.base, net.last()] {
            let best = entries
                .iter()
                .enumerate()
                .filter(|(_, (_, n, _))| n.contains(a))
                .max_by_key(|(i, (_, n, _))| (n.prefix, *i))
                .map(|(i, _)| i)
                .unwrap();
            out.push((Net::addr(a), best));
        }
    }
    out
}

fn json_str<'a>(v: &'a Json, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

#[test]
fn official_anonymous_db_matches_json_source_for_every_network() {
    let Some(mm) = maxmind_dir("official_anonymous_db_matches_json_source_for_every_network")
    else {
        return;
    };
    let r = open(
        None,
        None,
        Some(&mm.join("test-data/GeoIP2-Anonymous-IP-Test.mmdb")),
    );
    let entries = source_entries(&mm, "GeoIP2-Anonymous-IP-Test.json");
    assert_eq!(entries.len(), 12);
    let flag = |v: &Json, k: &str| v.get(k).and_then(Json::as_bool).unwrap_or(false);
    for (addr, i) in oracle_probes(&entries) {
        let (key, _, want) = &entries[i];
        let got = r.lookup_uncached(addr);
        let ctx = format!("{addr} in {key}");
        assert!(got.sources.anonymous, "{ctx}");
        assert_eq!(got.anonymous, flag(want, "is_anonymous"), "{ctx}");
        assert_eq!(got.vpn, flag(want, "is_anonymous_vpn"), "{ctx}");
        assert_eq!(got.tor, flag(want, "is_tor_exit_node"), "{ctx}");
        assert_eq!(got.hosting, flag(want, "is_hosting_provider"), "{ctx}");
        assert_eq!(got.public_proxy, flag(want, "is_public_proxy"), "{ctx}");
        assert_eq!(
            got.residential_proxy,
            flag(want, "is_residential_proxy"),
            "{ctx}"
        );
        assert_eq!(*r.lookup(addr), got, "{ctx}");
    }
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn official_city_db_matches_json_source() {
    let Some(mm) = maxmind_dir("official_city_db_matches_json_source") else {
        return;
    };
    let r = open(
        Some(&mm.join("test-data/GeoIP2-City-Test.mmdb")),
        None,
        None,
    );
    let entries = source_entries(&mm, "GeoIP2-City-Test.json");
    assert!(entries.len() > 200);
    let mut checked = 0;
    for (addr, i) in oracle_probes(&entries) {
        let (key, _, want) = &entries[i];
        let got = r.lookup_uncached(addr);
        let ctx = format!("{addr} in {key}");
        assert!(got.sources.city, "{ctx}");
        assert_eq!(
            got.country.as_deref(),
            json_str(want, &["country", "iso_code"]),
            "{ctx}"
        );
        let region = want
            .get("subdivisions")
            .and_then(|s| s.get(0))
            .and_then(|s| s.get("iso_code"))
            .and_then(Json::as_str);
        assert_eq!(got.region.as_deref(), region, "{ctx}");
        assert_eq!(
            got.city.as_deref(),
            json_str(want, &["city", "names", "en"]),
            "{ctx}"
        );
        let location = want.get("location").and_then(|l| {
            Some((
                l.get("latitude")?.as_f64()?,
                l.get("longitude")?.as_f64()?,
                l.get("accuracy_radius")
                    .and_then(Json::as_f64)
                    .unwrap_or(DEFAULT_ACCURACY_RADIUS_KM),
            ))
        });
        assert_eq!(got.location, location, "{ctx}");
        checked += 1;
    }
    assert!(checked >= 500, "{checked}");
    assert_eq!(r.lookup_errors(), 0);
}

#[test]
fn official_asn_db_matches_json_source() {
    let Some(mm) = maxmind_dir("official_asn_db_matches_json_source") else {
        return;
    };
    let r = open(
        None,
        Some(&mm.join("test-data/GeoLite2-ASN-Test.mmdb")),
        None,
    );
    let entries = source_entries(&mm, "GeoLite2-ASN-Test.json");
    assert!(entries.len() > 700);
    for (addr, i) in oracle_probes(&entries) {
        let (key, _, want) = &entries[i];
        let got = r.lookup_uncached(addr);
        let ctx = format!("{addr} in {key}");
        assert!(got.sources.asn, "{ctx}");
        let asn = want
            .get("autonomous_system_number")
            .and_then(Json::as_u64)
            .map(|n| u32::try_from(n).unwrap());
        assert_eq!(got.asn, asn, "{ctx}");
        assert_eq!(
            got.asn_org.as_deref(),
            json_str(want, &["autonomous_system_organization"]),
            "{ctx}"
        );
    }
    assert_eq!(r.lookup_errors(), 0);
}

// ---------------------------------------------------------------------------
// Corrupt databases

/// Addresses for sweeping a database: 65 536 IPv4 spread over the whole
/// space, and 4 096 IPv6.
fn sweep_addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = (0_u32..65_536)
        .map(|i| IpAddr::V4(Ipv4Addr::from((i << 16) | (i.wrapping_mul(7919) & 0xffff))))
        .collect();
    let mut x: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
    for _ in 0..4096 {
        x = x
            .wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645)
            .wrapping_add(0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f);
        out.push(IpAddr::V6(Ipv6Addr::from(x)));
    }
    out
}

/// Runs all three record decoders on every sweep address; returns how many
/// lookups errored.
fn sweep_decoders(reader: &Reader<Vec<u8>>, addrs: &[IpAddr]) -> usize {
    let mut errors = 0;
    for &a in addrs {
        let mut info = GeoInfo::default();
        errors += usize::from(city_into(reader, a, &mut info).is_err());
        errors += usize::from(asn_into(reader, a, &mut info).is_err());
        errors += usize::from(anonymous_into(reader, a, &mut info).is_err());
    }
    errors
}

fn mmdb_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            mmdb_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "mmdb") {
            out.push(p);
        }
    }
}

/// Every file in bad-data/ (plus the deliberately broken files in
/// test-data/): opening it in any slot, with and without full verification,
/// is a clean error; where the raw reader accepts the file, sweeping all
/// record decoders over ~70 000 addresses neither panics nor hangs.
#[test]
fn every_bad_data_file_is_rejected_cleanly_and_never_panics_or_hangs() {
    let Some(mm) = maxmind_dir("every_bad_data_file_is_rejected_cleanly_and_never_panics_or_hangs")
    else {
        return;
    };
    let mut files = Vec::new();
    mmdb_files(&mm.join("bad-data"), &mut files);
    files.sort();
    assert!(
        files.len() >= 21,
        "found only {} bad-data files",
        files.len()
    );
    for broken in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ] {
        files.push(mm.join("test-data").join(broken));
    }
    let addrs = Arc::new(sweep_addresses());
    for file in files {
        let name = file.display().to_string();
        let addrs = Arc::clone(&addrs);
        let report = within_secs(&name.clone(), 10, move || {
            for kind in [GeoDbKind::City, GeoDbKind::Asn, GeoDbKind::Anonymous] {
                for verify in [true, false] {
                    let options = GeoOptions {
                        verify,
                        ..GeoOptions::default()
                    };
                    let e = open_err(kind, &file, &options);
                    let msg = e.to_string();
                    assert_eq!(e.path(), file, "{msg}");
                    assert!(msg.contains(&format!("`{}`", file.display())), "{msg}");
                }
            }
            let bytes = std::fs::read(&file).unwrap();
            match Reader::from_source(bytes) {
                Err(e) => format!("rejected by reader: {e}"),
                Ok(reader) => {
                    let verified = reader.verify().map_err(|e| e.to_string());
                    let errors = sweep_decoders(&reader, &addrs);
                    format!(
                        "opens as `{}`; verify: {verified:?}; {errors} decode errors in sweep",
                        reader.metadata().database_type
                    )
                }
            }
        });
        eprintln!("{name}: {report}");
    }
}

#[test]
fn broken_double_is_caught_by_verify_and_by_the_probe_without_it() {
    let Some(mm) = maxmind_dir("broken_double_is_caught_by_verify_and_by_the_probe_without_it")
    else {
        return;
    };
    let path = mm.join("test-data/GeoIP2-City-Test-Broken-Double-Format.mmdb");
    let e = open_err(GeoDbKind::City, &path, &GeoOptions::default());
    assert!(matches!(e, GeoError::Verify { .. }), "{e:?}");
    assert!(e.to_string().contains("failed verification"), "{e}");

    // Without the full walk, the probe of 81.2.69.142 hits the broken double.
    let no_verify = GeoOptions {
        verify: false,
        ..GeoOptions::default()
    };
    let e = open_err(GeoDbKind::City, &path, &no_verify);
    assert!(matches!(e, GeoError::Probe { .. }), "{e:?}");
    assert!(
        e.to_string().contains("probe lookup of 81.2.69.142 failed"),
        "{e}"
    );
}

#[test]
fn verification_requires_a_description() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asn.mmdb");
    let mut w = Writer::new("GeoLite2-ASN");
    insert(&mut w, "192.0.2.0/24", asn_value(64_502, "No Description"));
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let e = open_err(GeoDbKind::Asn, &path, &GeoOptions::default());
    assert!(matches!(e, GeoError::Verify { .. }), "{e:?}");
    assert!(e.to_string().contains("description"), "{e}");
    let r = GeoResolver::open_with(
        &GeoPaths {
            asn: Some(path),
            ..GeoPaths::default()
        },
        &GeoOptions {
            verify: false,
            ..GeoOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.lookup(ip("192.0.2.9")).asn, Some(64_502));
}
