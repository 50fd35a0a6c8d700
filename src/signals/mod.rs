//! Signals: the I/O that turns an attempt into the core's inputs — the
//! user-agent parser ([`device::UaParser`], cached) and the MaxMind
//! databases ([`geo::GeoResolver`], reloaded on change). What they answer
//! is plain data ([`crate::core::inputs::DeviceInfo`],
//! [`crate::core::inputs::GeoInfo`]).

pub mod device;
pub mod geo;
