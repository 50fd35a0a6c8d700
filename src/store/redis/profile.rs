//! The admin API's view of a profile: an earlier version's profile hash
//! and the pending decisions recorded with their answers (and an earlier
//! version's recent-decisions list) read back into a [`UserProfile`].

use super::*;

/// The comparable hash ([`super::value_hash`]) of a stored hex16 value.
pub(super) fn hash_of_hex(h: &str) -> Option<u64> {
    let bytes = hex::decode(h).ok()?;
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(b).max(1) & VALUE_HASH_MASK)
}

/// Reads an earlier version's profile hash (the profile is one string now,
/// [`crate::store::profile::Profile`]; a hash is converted when first read).
pub(super) fn parse_profile_hash(hash: &[(String, String)]) -> UserProfile {
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
    p
}

/// A recorded decision's answer: `<at>|<action>|<score>|<codes>|<decision
/// id>` in the earlier list; in a pending record, the decision id's tag
/// (`id` gives the rest of it).
fn answer(
    at: &str,
    action: &str,
    score: &str,
    codes: &str,
    id: impl FnOnce(crate::domain::Action) -> Option<String>,
) -> Option<RecentDecision> {
    let action = crate::domain::Action::parse(action)?;
    Some(RecentDecision {
        decision_id: id(action)?,
        at: UnixMillis(at.parse().ok()?),
        action,
        // Scores are recorded at f32 precision, like the memory store.
        score: f64::from(score.parse::<f32>().ok()?),
        reasons: codes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The user's recent decisions, newest first (by time, then decision, as
/// the memory store orders them): the unexpired pending decisions recorded
/// with their answer, and an earlier version's list (`legacy`, oldest
/// first), whose decisions have no answer in their pending record.
pub(super) fn recent(
    user: Key,
    pending: &[(String, String)],
    legacy: &[String],
    now: UnixMillis,
) -> Vec<RecentDecision> {
    let n = PROFILE_DIMS.len();
    let mut found: Vec<(i64, u128, RecentDecision)> = Vec::new();
    for (field, record) in pending {
        let parts: Vec<&str> = record.split('|').collect();
        let [_, expires, at, .., action, score, codes, tag] = parts[..] else {
            continue;
        };
        if parts.len() != 5 + n + 4 || expires.parse::<i64>().map_or(true, |e| e < now.0) {
            continue;
        }
        let Ok(decision) = u128::from_str_radix(field, 16) else {
            continue;
        };
        let id = |action| {
            let tag: [u8; 8] = hex::decode(tag).ok()?.try_into().ok()?;
            Some(crate::core::decision_id::from_parts(
                decision, user, action, tag,
            ))
        };
        if let Some(r) = answer(at, action, score, codes, id) {
            found.push((r.at.0, decision, r));
        }
    }
    for (i, entry) in legacy.iter().enumerate() {
        let mut it = entry.splitn(5, '|');
        let (Some(at), Some(action), Some(score), Some(codes), Some(id)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        if let Some(r) = answer(at, action, score, codes, |_| Some(id.to_string())) {
            found.push((r.at.0, i as u128, r));
        }
    }
    newest_recent(found)
}
