//! Offline tools: they run the same [`crate::core`] as the server, over
//! files or against a running server, never on the serving path.
//!
//! - [`replay`]: past logins (the RBA dataset's CSV) through the core, with
//!   the published evaluation next to the Freeman et al. baseline.
//! - [`simulate`]: synthetic logins in the RBA dataset's layout.
//! - [`train`]: fit the logistic model on labelled logins (linfa).
//! - [`bench`]: the load generator for a running server.
//! - [`backtest`]: journaled decisions re-decided with a candidate rule file
//!   or model, next to the serving ones.

pub mod backtest;
pub mod bench;
pub mod replay;
pub mod simulate;
pub mod train;
