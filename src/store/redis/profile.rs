//! The admin API's view of a profile: the hash and recent-decisions list
//! read back into a [`UserProfile`].

use super::*;

/// The comparable hash ([`super::value_hash`]) of a stored hex16 value.
pub(super) fn hash_of_hex(h: &str) -> Option<u64> {
    let bytes = hex::decode(h).ok()?;
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(b).max(1) & VALUE_HASH_MASK)
}

/// Reads a profile hash and recent-decisions list (see admin.lua).
pub(super) fn parse_profile(hash: &[(String, String)], recent: &[String]) -> UserProfile {
    let mut p = UserProfile::default();
    let mut values: std::collections::BTreeMap<(usize, u64), (u32, u32)> = Default::default();
    let mut la = None;
    let mut lp = None;
    for (field, value) in hash {
        let n = || value.parse::<i64>().unwrap_or(0);
        let n32 = || u32::try_from(n().max(0)).unwrap_or(u32::MAX);
        let mark = |rest: &str| {
            hash_of_hex(rest).map(|device| DeviceMark {
                device,
                at: UnixMillis(n()),
            })
        };
        if let Some(rest) = field.strip_prefix("tr:") {
            p.trusted.extend(mark(rest));
        } else if let Some(rest) = field.strip_prefix("rv:") {
            p.revoked.extend(mark(rest));
        } else if field == "v" {
            p.verified_logins = n32();
        } else if field == "la" {
            la = Some(UnixMillis(n()));
        } else if field == "lp" {
            lp = parse_place(value);
        } else if field == "sa" {
            p.last_strong_auth = Some(UnixMillis(n()));
        } else if let Some(hour) = field.strip_prefix('h') {
            if let Ok(h) = hour.parse::<u8>() {
                p.hours.push((h, n32()));
            }
        } else if let Some((kind, rest)) = field.split_at_checked(1)
            && (kind == "d" || kind == "t")
            && let Some((slot, hex)) = rest.split_once(':')
            && let (Ok(slot), Some(hash)) = (slot.parse::<usize>(), hash_of_hex(hex))
        {
            let e = values.entry((slot, hash)).or_default();
            if kind == "d" {
                e.0 = n32();
            } else {
                e.1 = n32();
            }
        }
    }
    p.values = values
        .into_iter()
        .filter(|(_, (count, _))| *count > 0)
        .filter_map(|((slot, hash), (count, last_seen_secs))| {
            Some(ProfileValue {
                dim: *PROFILE_DIMS.get(slot)?,
                hash,
                count,
                last_seen_secs,
            })
        })
        .collect();
    p.values.sort();
    p.hours.sort();
    p.trusted.sort();
    p.revoked.sort();
    p.last_login = la.map(|at| LastLogin { at, place: lp });
    p.recent = recent
        .iter()
        .filter_map(|e| {
            let mut it = e.splitn(5, '|');
            let at = it.next()?.parse().ok()?;
            let action = crate::domain::Action::parse(it.next()?)?;
            // Scores are recorded at f32 precision, like the memory store.
            let score = f64::from(it.next()?.parse::<f32>().ok()?);
            let codes = it.next()?;
            let decision_id = it.next()?.to_string();
            Some(RecentDecision {
                decision_id,
                at: UnixMillis(at),
                action,
                score,
                reasons: codes
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect();
    p
}
