//! The single-owner memory store (`MemoryStore::new_local`, what replay
//! drives) against the serving one: the shared conformance suite must give
//! the same transcript.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::{self, CAP};
use riskgate::store::memory::{MemoryLimits, MemoryStore};

#[tokio::test]
async fn the_local_memory_store_answers_exactly_like_the_shared_one() {
    let limits = MemoryLimits {
        history_per_dim: CAP,
        ..MemoryLimits::default()
    };
    let expected = conformance::run_all(&MemoryStore::new(limits.clone())).await;
    let got = conformance::run_all(&MemoryStore::new_local(limits)).await;
    assert!(!expected.is_empty());
    assert_eq!(expected.len(), got.len());
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
}
