//! Decision ids: `base64url(uuid ‖ user key ‖ action ‖ tag)`, 55
//! characters. The tag is a MAC ([`IdHasher::tag`]) over the rest, so the
//! action cannot be forged (a report cannot claim an ALLOW for a DENY), and
//! the user's key (a keyed hash, never the raw id) lets a store find the
//! pending decision in the user's own slot.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::Action;

use super::keys::{IdHasher, Key};

/// Bytes of a decoded id.
pub const LEN: usize = 16 + 16 + 1 + 8;

fn action_of(b: u8) -> Option<Action> {
    match b {
        0 => Some(Action::Allow),
        1 => Some(Action::StepUp),
        2 => Some(Action::Deny),
        _ => None,
    }
}

fn body(decision: u128, user: Key, action: Action) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..16].copy_from_slice(&decision.to_be_bytes());
    buf[16..32].copy_from_slice(&user.0);
    buf[32] = action.severity();
    buf
}

/// The id of `decision`, made by `user`, answered with `action`.
pub fn encode(h: &IdHasher, decision: u128, user: Key, action: Action) -> String {
    let mut buf = body(decision, user, action);
    let tag = h.tag(&buf[..33]);
    buf[33..].copy_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The id from its parts and an already computed tag (a store that kept
/// only the tag rebuilds the id it was given).
pub fn from_parts(decision: u128, user: Key, action: Action, tag: [u8; 8]) -> String {
    let mut buf = body(decision, user, action);
    buf[33..].copy_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The tag of a well-formed id (not verified).
pub fn tag_of(id: &str) -> Option<[u8; 8]> {
    let bytes = raw(id)?;
    let mut t = [0u8; 8];
    t.copy_from_slice(&bytes[33..]);
    Some(t)
}

fn raw(id: &str) -> Option<[u8; LEN]> {
    if id.len() > 64 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    bytes.try_into().ok()
}

/// The decision, its user and its action, if `id` was issued with this
/// hasher's key.
pub fn decode(h: &IdHasher, id: &str) -> Option<(u128, Key, Action)> {
    let bytes = raw(id)?;
    let tag = h.tag(&bytes[..33]);
    // Compare every byte, whatever the first mismatch.
    let diff = tag
        .iter()
        .zip(&bytes[33..])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return None;
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&bytes[..16]);
    let mut user = [0u8; 16];
    user.copy_from_slice(&bytes[16..32]);
    let action = action_of(bytes[32])?;
    Some((u128::from_be_bytes(uuid), Key(user), action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_resist_tampering() {
        let h = IdHasher::random();
        let user = h.key(crate::core::keys::Dim::User, b"alice");
        let id = encode(&h, 42, user, Action::Deny);
        assert!(id.len() <= 64);
        assert_eq!(decode(&h, &id), Some((42, user, Action::Deny)));
        let tag = tag_of(&id).unwrap();
        assert_eq!(from_parts(42, user, Action::Deny, tag), id);
        let forged = encode(&IdHasher::random(), 42, user, Action::Allow);
        assert_eq!(decode(&h, &forged), None);
        for i in [16, 31, 32] {
            // Neither the user nor the action can be swapped.
            let mut bytes = URL_SAFE_NO_PAD.decode(&id).unwrap();
            bytes[i] ^= 1;
            assert_eq!(decode(&h, &URL_SAFE_NO_PAD.encode(bytes)), None);
        }
        assert_eq!(decode(&h, "not-an-id"), None);
        assert_eq!(decode(&h, ""), None);
    }
}
