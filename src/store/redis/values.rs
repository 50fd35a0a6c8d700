//! How values are laid out in Redis: velocity hash fields per bucket and
//! window, their parsing into window counts, and places as text.

use super::*;

/// A velocity hash field: `<kind><window>:<bucket>`.
pub(super) fn field(kind: char, window: usize, at: UnixMillis) -> String {
    format!("{kind}{}:{}", window + 1, bucket(at, GEOMETRY[window].0))
}

/// Counts one event of `kind` at `at` in the velocity hash `key`.
/// The profile's (and the global stats') distinct-value count fields, one
/// per dimension slot: `n<slot>`.
pub(super) const DISTINCT_FIELDS: [&str; PROFILE_DIMS.len()] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11",
];

pub(super) fn count_event(pipe: &mut Pipeline, key: &str, kind: char, at: UnixMillis) {
    for w in 0..GEOMETRY.len() {
        pipe.cmd("HINCRBY")
            .arg(key)
            .arg(field(kind, w, at))
            .arg(1)
            .ignore();
    }
}

/// A velocity hash as read: (kind, window, bucket, events) per field.
pub(super) struct Buckets {
    fields: Vec<(char, usize, u32, u64)>,
}

impl Buckets {
    pub(super) fn parse(v: Value) -> Buckets {
        let pairs: Vec<(String, u64)> = match v {
            Value::Map(m) => m
                .into_iter()
                .filter_map(|(k, v)| {
                    Some((
                        String::from_redis_value(k).ok()?,
                        u64::from_redis_value(v).ok()?,
                    ))
                })
                .collect(),
            other => FromRedisValue::from_redis_value(other).unwrap_or_default(),
        };
        let fields = pairs
            .into_iter()
            .filter_map(|(name, n)| {
                let mut chars = name.chars();
                let kind = chars.next()?;
                let window = chars.next()?.to_digit(10)?.checked_sub(1)? as usize;
                let b = name.get(3..)?.parse::<u32>().ok()?;
                (window < GEOMETRY.len() && name.as_bytes().get(2) == Some(&b':'))
                    .then_some((kind, window, b, n))
            })
            .collect();
        Buckets { fields }
    }

    pub(super) fn of(
        &self,
        kind: char,
        window: usize,
    ) -> impl Iterator<Item = (u32, u64)> + Clone + '_ {
        self.fields
            .iter()
            .filter(move |f| f.0 == kind && f.1 == window)
            .map(|f| (f.2, f.3))
    }

    pub(super) fn windows(&self, kind: char, at: UnixMillis, max: u32) -> Windows {
        let count = |w: usize| {
            let (width, len) = GEOMETRY[w];
            window_count(bucket(at, width), len as u32, max, self.of(kind, w))
        };
        Windows {
            m1: count(0),
            h1: count(1),
            h24: count(2),
        }
    }

    /// Fields that can never count again.
    pub(super) fn stale(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in ['f', 'a'] {
            for (w, (_, len)) in GEOMETRY.iter().enumerate() {
                let Some(head) = self.of(kind, w).map(|(b, _)| b).max() else {
                    continue;
                };
                for (b, _) in self.of(kind, w) {
                    if stale(b, head, *len as u32) {
                        out.push(format!("{kind}{}:{b}", w + 1));
                    }
                }
            }
        }
        out
    }
}

pub(super) fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        Some(Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn u32_of(v: Option<&Value>) -> u32 {
    u32::try_from(int(v).max(0)).unwrap_or(u32::MAX)
}

pub(super) fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::BulkString(b)) if !b.is_empty() => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// A place as stored: at [`GeoPoint::stored`] precision, so it reads back
/// exactly as the memory store keeps it.
pub(super) fn place_text(p: &GeoPoint) -> String {
    let p = p.stored();
    format!("{},{},{}", p.lat, p.lon, p.accuracy_km)
}

pub(super) fn parse_place(s: &str) -> Option<GeoPoint> {
    let mut it = s.split(',').map(str::parse::<f64>);
    let (Some(Ok(lat)), Some(Ok(lon)), Some(Ok(accuracy_km)), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(GeoPoint {
        lat,
        lon,
        accuracy_km,
    })
}
