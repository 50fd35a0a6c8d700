//! GeoIP lookups from MaxMind databases (GeoIP2 / GeoLite2 `.mmdb` files).
//!
//! A [`GeoResolver`] holds up to three databases, each optional:
//!
//! - **city** — country (ISO alpha-2), first subdivision ISO code, English
//!   city name and location (latitude, longitude, accuracy radius in km);
//! - **asn** — autonomous system number and organisation;
//! - **anonymous** — the Anonymous-IP flags (anonymous, VPN, Tor exit,
//!   hosting provider, public proxy, residential proxy).
//!
//! [`GeoResolver::lookup`] merges the three answers into one [`GeoInfo`],
//! cached in a bounded [`moka`] cache (default 100 000 entries, 1 h TTL)
//! keyed by the canonical address (IPv4-mapped IPv6 counts as IPv4). A
//! database that has no record for an address, or whose record cannot be
//! decoded, just leaves its fields `None`/`false`; lookups never fail and
//! never panic (decode errors are counted, see
//! [`GeoResolver::lookup_errors`]).
//!
//! # Validation rules
//!
//! A database is accepted into a slot — at [`GeoResolver::open`] and at every
//! reload — only when all of these hold, checked in this order:
//!
//! 1. the path is a regular file (after following symlinks) of at most
//!    [`GeoOptions::max_file_size`] bytes; it is read fully into memory (no
//!    mmap, so replacing or truncating the file later cannot affect a loaded
//!    database);
//! 2. it parses as a MaxMind DB (metadata marker, metadata, search-tree
//!    layout — as checked by [`maxminddb::Reader::from_source`]);
//! 3. its metadata `database_type` fits the slot (case-sensitive substring):
//!    - city: contains `City`, `Enterprise` or `Country` — the GeoIP2 /
//!      GeoLite2 City, (Precision) Enterprise and Country databases share
//!      the record layout; a Country database answers only `country`;
//!    - asn: contains `ASN` or `ISP` (GeoIP2-ISP carries the same
//!      `autonomous_system_*` fields);
//!    - anonymous: contains `Anonymous-IP` or `Anonymous-Plus` (the latter is
//!      a superset of the Anonymous-IP flags);
//! 4. if [`GeoOptions::verify`] is set (the default), the whole file passes
//!    [`maxminddb::Reader::verify`]: every search-tree node and every data
//!    record is walked once, so a corrupt update is rejected up front instead
//!    of degrading lookups later. The verifier is stricter than the format
//!    spec: among other things it requires a non-empty metadata
//!    `description` map (MaxMind's databases have one; a home-made database
//!    must set one, or be loaded with `verify: false`);
//! 5. probe lookups of a few fixed addresses (IPv4, and IPv6 for IPv6
//!    databases), decoded into this module's record types, do not error.
//!
//! # Hot reload
//!
//! Each database sits in an [`ArcSwap`], so a reload swaps it atomically
//! while lookups in flight finish on the old one. [`GeoResolver::reload_changed`]
//! (meant to be polled every few seconds) reloads every configured file whose
//! `(mtime, len, inode)` changed since the last attempt. On success the new
//! database is swapped in and the cache is cleared; on failure the previous
//! database stays in service and the error is returned once per changed
//! version of the file (a file that keeps failing is not re-read until it
//! changes again). The cache is keyed by a generation number bumped on every
//! swap, so an answer computed from an old database can never be served
//! after the swap.

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Reader};
use moka::sync::Cache;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::core::inputs::{DEFAULT_ACCURACY_RADIUS_KM, GeoInfo};

/// Paths of the databases to load; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoPaths {
    /// GeoIP2/GeoLite2 City (or Enterprise, or Country) database.
    pub city: Option<PathBuf>,
    /// GeoLite2/GeoIP2 ASN (or GeoIP2-ISP) database.
    pub asn: Option<PathBuf>,
    /// GeoIP2 Anonymous-IP (or GeoIP Anonymous-Plus) database.
    pub anonymous: Option<PathBuf>,
}

/// Tuning knobs for [`GeoResolver::open_with`]; [`Default`] gives the
/// production settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoOptions {
    /// Maximum number of cached lookups (default 100 000; 0 disables caching).
    pub cache_capacity: u64,
    /// Time to live of a cached lookup (default 1 h).
    pub cache_ttl: Duration,
    /// Run the full [`maxminddb::Reader::verify`] walk on every load
    /// (default `true`).
    pub verify: bool,
    /// Largest database file accepted, in bytes (default 2 GiB).
    pub max_file_size: u64,
}

impl Default for GeoOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(3600),
            verify: true,
            max_file_size: 2 << 30,
        }
    }
}

/// The three database slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeoDbKind {
    /// City / Enterprise / Country database.
    City,
    /// ASN / ISP database.
    Asn,
    /// Anonymous-IP / Anonymous-Plus database.
    Anonymous,
}

impl GeoDbKind {
    /// `"city"`, `"asn"` or `"anonymous"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::City => "city",
            Self::Asn => "asn",
            Self::Anonymous => "anonymous",
        }
    }

    /// The substrings of `database_type` this slot accepts.
    pub fn accepted_types(self) -> &'static [&'static str] {
        match self {
            Self::City => &["City", "Enterprise", "Country"],
            Self::Asn => &["ASN", "ISP"],
            Self::Anonymous => &["Anonymous-IP", "Anonymous-Plus"],
        }
    }

    /// Whether a database of type `database_type` may be loaded into this
    /// slot.
    pub fn accepts(self, database_type: &str) -> bool {
        self.accepted_types()
            .iter()
            .any(|t| database_type.contains(t))
    }

    fn expected(self) -> String {
        let quoted: Vec<String> = self
            .accepted_types()
            .iter()
            .map(|t| format!("`{t}`"))
            .collect();
        quoted.join(" or ")
    }
}

impl fmt::Display for GeoDbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a database could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The file could not be stat'ed or read.
    #[error("{kind} database `{}`: cannot read file: {source}", .path.display())]
    Io {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// The path is a directory, device, FIFO, …
    #[error("{kind} database `{}`: not a regular file", .path.display())]
    NotAFile {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
    },
    /// The file is larger than [`GeoOptions::max_file_size`].
    #[error("{kind} database `{}`: file is {len} bytes, over the {max}-byte limit", .path.display())]
    TooLarge {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// Size seen (at least this many bytes).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not a readable MaxMind DB.
    #[error("{kind} database `{}`: not a valid maxmind db: {source}", .path.display())]
    Invalid {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// Reader error.
        #[source]
        source: MaxMindDbError,
    },
    /// The metadata `database_type` does not fit the slot.
    #[error(
        "{kind} database `{}`: database type `{found}` does not fit the {kind} slot (expected a type containing {expected})",
        .path.display()
    )]
    WrongType {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// `database_type` found in the metadata.
        found: String,
        /// Accepted substrings, e.g. "`ASN` or `ISP`".
        expected: String,
    },
    /// The full verification walk failed.
    #[error("{kind} database `{}`: failed verification: {source}", .path.display())]
    Verify {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// Reader error.
        #[source]
        source: MaxMindDbError,
    },
    /// A probe lookup failed.
    #[error("{kind} database `{}`: probe lookup of {ip} failed: {source}", .path.display())]
    Probe {
        /// Slot.
        kind: GeoDbKind,
        /// Configured path.
        path: PathBuf,
        /// Probed address.
        ip: IpAddr,
        /// Reader error.
        #[source]
        source: MaxMindDbError,
    },
}

impl GeoError {
    /// The slot the error is about.
    pub fn kind(&self) -> GeoDbKind {
        match self {
            Self::Io { kind, .. }
            | Self::NotAFile { kind, .. }
            | Self::TooLarge { kind, .. }
            | Self::Invalid { kind, .. }
            | Self::WrongType { kind, .. }
            | Self::Verify { kind, .. }
            | Self::Probe { kind, .. } => *kind,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::NotAFile { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Invalid { path, .. }
            | Self::WrongType { path, .. }
            | Self::Verify { path, .. }
            | Self::Probe { path, .. } => path,
        }
    }
}

/// What was loaded: the database's metadata and file size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoDbInfo {
    /// Metadata `database_type`, e.g. `GeoIP2-City`.
    pub database_type: String,
    /// Metadata `build_epoch` (Unix seconds).
    pub build_epoch: u64,
    /// 4 or 6.
    pub ip_version: u16,
    /// Search-tree node count.
    pub node_count: u32,
    /// File size in bytes.
    pub file_len: u64,
}

impl fmt::Display for GeoDbInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} built {} (epoch {}), ipv{}, {} nodes, {} bytes",
            self.database_type,
            format_epoch(self.build_epoch),
            self.build_epoch,
            self.ip_version,
            self.node_count,
            self.file_len
        )
    }
}

/// Outcome of reloading one changed file.
#[derive(Debug)]
pub struct ReloadResult {
    /// Slot.
    pub kind: GeoDbKind,
    /// Configured path.
    pub path: PathBuf,
    /// The new database (now in service), or why the old one was kept.
    pub outcome: Result<GeoDbInfo, GeoError>,
}

/// GeoIP resolver over up to three MaxMind databases, with hot reload and a
/// lookup cache. `Send + Sync`; share it behind an `Arc`.
pub struct GeoResolver {
    city: Option<Slot>,
    asn: Option<Slot>,
    anonymous: Option<Slot>,
    options: GeoOptions,
    cache: Cache<(u64, IpAddr), Arc<GeoInfo>>,
    generation: AtomicU64,
    lookup_errors: AtomicU64,
    empty: Arc<GeoInfo>,
}

impl fmt::Debug for GeoResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GeoResolver");
        for slot in self.slots() {
            d.field(slot.kind.as_str(), &slot.db.load().info);
        }
        d.field("options", &self.options)
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Slot {
    kind: GeoDbKind,
    path: PathBuf,
    db: ArcSwap<LoadedDb>,
    /// Stamp of the file version last tried (loaded or rejected); `None`
    /// when the file was missing or could not be stat'ed.
    last_seen: Mutex<Option<FileStamp>>,
}

struct LoadedDb {
    reader: Reader<Vec<u8>>,
    info: GeoDbInfo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let ino = 0;
        Self {
            mtime: meta.modified().ok(),
            len: meta.len(),
            ino,
        }
    }

    fn current(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

impl GeoResolver {
    /// Opens every configured database with [`GeoOptions::default`].
    ///
    /// # Errors
    /// The first configured database that fails the rules in the
    /// [module docs](self); the error names the slot, the path and the
    /// problem.
    pub fn open(paths: &GeoPaths) -> Result<Self, GeoError> {
        Self::open_with(paths, &GeoOptions::default())
    }

    /// The resolver `paths` configure: `None` when no database is named.
    ///
    /// # Errors
    /// As [`GeoResolver::open`].
    pub fn configured(paths: &GeoPaths) -> Result<Option<Self>, GeoError> {
        if *paths == GeoPaths::default() {
            return Ok(None);
        }
        Self::open(paths).map(Some)
    }

    /// Opens every configured database with the given options.
    ///
    /// # Errors
    /// As [`GeoResolver::open`].
    pub fn open_with(paths: &GeoPaths, options: &GeoOptions) -> Result<Self, GeoError> {
        let slot = |kind, path: &Option<PathBuf>| -> Result<Option<Slot>, GeoError> {
            let Some(path) = path else { return Ok(None) };
            let (db, stamp) = load_db(kind, path, options)?;
            Ok(Some(Slot {
                kind,
                path: path.clone(),
                db: ArcSwap::from_pointee(db),
                last_seen: Mutex::new(Some(stamp)),
            }))
        };
        Ok(Self {
            city: slot(GeoDbKind::City, &paths.city)?,
            asn: slot(GeoDbKind::Asn, &paths.asn)?,
            anonymous: slot(GeoDbKind::Anonymous, &paths.anonymous)?,
            cache: Cache::builder()
                .max_capacity(options.cache_capacity)
                .time_to_live(options.cache_ttl)
                .build(),
            options: options.clone(),
            generation: AtomicU64::new(0),
            lookup_errors: AtomicU64::new(0),
            empty: Arc::new(GeoInfo::default()),
        })
    }

    /// True when no database is configured (every lookup is empty).
    pub fn is_empty(&self) -> bool {
        self.city.is_none() && self.asn.is_none() && self.anonymous.is_none()
    }

    /// Looks `ip` up in every configured database, through the cache.
    pub fn lookup(&self, ip: IpAddr) -> Arc<GeoInfo> {
        if self.is_empty() {
            return Arc::clone(&self.empty);
        }
        let ip = ip.to_canonical();
        // Read the generation before the databases (see `swap_in`): an answer
        // computed from an old database is stored under an old key.
        let generation = self.generation.load(Ordering::SeqCst);
        self.cache
            .get_with((generation, ip), || Arc::new(self.resolve(ip)))
    }

    /// Looks `ip` up in every configured database, bypassing the cache.
    pub fn lookup_uncached(&self, ip: IpAddr) -> GeoInfo {
        self.resolve(ip.to_canonical())
    }

    /// Number of lookups, since open, in which a database had a record that
    /// could not be decoded (those fields were left empty).
    pub fn lookup_errors(&self) -> u64 {
        self.lookup_errors.load(Ordering::Relaxed)
    }

    /// The databases in service, with their metadata.
    pub fn databases(&self) -> Vec<(GeoDbKind, GeoDbInfo)> {
        self.slots()
            .map(|s| (s.kind, s.db.load().info.clone()))
            .collect()
    }

    /// Reloads every configured file whose `(mtime, len, inode)` changed
    /// since it was last tried; see the [module docs](self). Returns one
    /// entry per file tried (empty when nothing changed).
    pub fn reload_changed(&self) -> Vec<ReloadResult> {
        self.slots().filter_map(|s| self.reload(s, false)).collect()
    }

    /// Reloads every configured file, changed or not (e.g. on SIGHUP).
    pub fn reload_all(&self) -> Vec<ReloadResult> {
        self.slots().filter_map(|s| self.reload(s, true)).collect()
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        [&self.city, &self.asn, &self.anonymous]
            .into_iter()
            .flatten()
    }

    fn reload(&self, slot: &Slot, force: bool) -> Option<ReloadResult> {
        // Held across the load so concurrent callers do not load twice.
        let mut last = lock(&slot.last_seen);
        let seen = FileStamp::current(&slot.path);
        if !force && seen == *last {
            return None;
        }
        let outcome = match load_db(slot.kind, &slot.path, &self.options) {
            Ok((db, stamp)) => {
                *last = Some(stamp);
                let info = db.info.clone();
                self.swap_in(slot, db);
                Ok(info)
            }
            Err(e) => {
                *last = seen;
                Err(e)
            }
        };
        Some(ReloadResult {
            kind: slot.kind,
            path: slot.path.clone(),
            outcome,
        })
    }

    fn swap_in(&self, slot: &Slot, db: LoadedDb) {
        slot.db.store(Arc::new(db));
        // After the store: a lookup that reads the new generation is
        // guaranteed to see the new database.
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    fn resolve(&self, ip: IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        let mut failed = false;
        if let Some(slot) = &self.city {
            match city_into(&slot.db.load().reader, ip, &mut info) {
                Ok(hit) => info.sources.city = hit,
                Err(_) => failed = true,
            }
        }
        if let Some(slot) = &self.asn {
            match asn_into(&slot.db.load().reader, ip, &mut info) {
                Ok(hit) => info.sources.asn = hit,
                Err(_) => failed = true,
            }
        }
        if let Some(slot) = &self.anonymous {
            match anonymous_into(&slot.db.load().reader, ip, &mut info) {
                Ok(hit) => info.sources.anonymous = hit,
                Err(_) => failed = true,
            }
        }
        if failed {
            self.lookup_errors.fetch_add(1, Ordering::Relaxed);
        }
        info
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads, parses and validates one database file.
fn load_db(
    kind: GeoDbKind,
    path: &Path,
    options: &GeoOptions,
) -> Result<(LoadedDb, FileStamp), GeoError> {
    let io_err = |source| GeoError::Io {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let too_large = |len| GeoError::TooLarge {
        kind,
        path: path.to_path_buf(),
        len,
        max: options.max_file_size,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(GeoError::NotAFile {
            kind,
            path: path.to_path_buf(),
        });
    }
    if meta.len() > options.max_file_size {
        return Err(too_large(meta.len()));
    }
    let stamp = FileStamp::of(&meta);
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|f| {
            f.take(options.max_file_size.saturating_add(1))
                .read_to_end(&mut buf)
        })
        .map_err(io_err)?;
    let file_len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if file_len > options.max_file_size {
        return Err(too_large(file_len));
    }
    let reader = Reader::from_source(buf).map_err(|source| GeoError::Invalid {
        kind,
        path: path.to_path_buf(),
        source,
    })?;
    validate(kind, path, &reader, options)?;
    let m = reader.metadata();
    let info = GeoDbInfo {
        database_type: m.database_type.clone(),
        build_epoch: m.build_epoch,
        ip_version: m.ip_version,
        node_count: m.node_count,
        file_len,
    };
    Ok((LoadedDb { reader, info }, stamp))
}

/// Addresses looked up (and decoded) once on every load.
const PROBES: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)),
    IpAddr::V4(Ipv4Addr::new(89, 160, 20, 128)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
    IpAddr::V6(Ipv6Addr::new(0x2a02, 0xcf40, 0, 0, 0, 0, 0, 1)),
];

fn validate(
    kind: GeoDbKind,
    path: &Path,
    reader: &Reader<Vec<u8>>,
    options: &GeoOptions,
) -> Result<(), GeoError> {
    let database_type = &reader.metadata().database_type;
    if !kind.accepts(database_type) {
        return Err(GeoError::WrongType {
            kind,
            path: path.to_path_buf(),
            found: database_type.clone(),
            expected: kind.expected(),
        });
    }
    if options.verify {
        reader.verify().map_err(|source| GeoError::Verify {
            kind,
            path: path.to_path_buf(),
            source,
        })?;
    }
    for ip in PROBES {
        let mut scratch = GeoInfo::default();
        let probed = match kind {
            GeoDbKind::City => city_into(reader, ip, &mut scratch),
            GeoDbKind::Asn => asn_into(reader, ip, &mut scratch),
            GeoDbKind::Anonymous => anonymous_into(reader, ip, &mut scratch),
        };
        probed.map_err(|source| GeoError::Probe {
            kind,
            path: path.to_path_buf(),
            ip,
            source,
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Record decoding: only the fields we use, borrowing strings from the file.

#[derive(Deserialize, Default)]
struct IsoRec<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct NamesRec<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct CityNameRec<'a> {
    #[serde(borrow, default)]
    names: NamesRec<'a>,
}

#[derive(Deserialize, Default)]
struct LocationRec {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize, Default)]
struct CityRec<'a> {
    #[serde(borrow, default)]
    country: IsoRec<'a>,
    #[serde(borrow, default, deserialize_with = "first_subdivision")]
    subdivisions: Option<IsoRec<'a>>,
    #[serde(borrow, default)]
    city: CityNameRec<'a>,
    #[serde(default)]
    location: LocationRec,
}

#[derive(Deserialize, Default)]
struct AsnRec<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct AnonymousRec {
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
    #[serde(default)]
    is_residential_proxy: Option<bool>,
}

/// Decodes the first element of the `subdivisions` array and skips the rest
/// (the decoder bounds how much it will skip).
fn first_subdivision<'de, D>(deserializer: D) -> Result<Option<IsoRec<'de>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct FirstVisitor;
    impl<'de> Visitor<'de> for FirstVisitor {
        type Value = Option<IsoRec<'de>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of subdivisions")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<IsoRec<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    deserializer.deserialize_seq(FirstVisitor)
}

/// Decodes `ip`'s record as `T`; `Ok(None)` when the database has none (an
/// IPv6 address in an IPv4-only database has none).
fn decode<'a, T: Deserialize<'a>>(
    reader: &'a Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<T>, MaxMindDbError> {
    if ip.is_ipv6() && reader.metadata().ip_version == 4 {
        return Ok(None);
    }
    reader.lookup(ip)?.decode::<T>()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

fn city_into(
    reader: &Reader<Vec<u8>>,
    ip: IpAddr,
    info: &mut GeoInfo,
) -> Result<bool, MaxMindDbError> {
    let Some(rec) = decode::<CityRec<'_>>(reader, ip)? else {
        return Ok(false);
    };
    info.country = non_empty(rec.country.iso_code);
    info.region = non_empty(rec.subdivisions.and_then(|s| s.iso_code));
    info.city = non_empty(rec.city.names.en);
    info.location = match (rec.location.latitude, rec.location.longitude) {
        (Some(lat), Some(lon))
            if lat.is_finite()
                && lon.is_finite()
                && (-90.0..=90.0).contains(&lat)
                && (-180.0..=180.0).contains(&lon) =>
        {
            let radius = rec
                .location
                .accuracy_radius
                .map_or(DEFAULT_ACCURACY_RADIUS_KM, f64::from);
            Some((lat, lon, radius))
        }
        _ => None,
    };
    Ok(true)
}

fn asn_into(
    reader: &Reader<Vec<u8>>,
    ip: IpAddr,
    info: &mut GeoInfo,
) -> Result<bool, MaxMindDbError> {
    let Some(rec) = decode::<AsnRec<'_>>(reader, ip)? else {
        return Ok(false);
    };
    info.asn = rec.autonomous_system_number;
    info.asn_org = non_empty(rec.autonomous_system_organization);
    Ok(true)
}

fn anonymous_into(
    reader: &Reader<Vec<u8>>,
    ip: IpAddr,
    info: &mut GeoInfo,
) -> Result<bool, MaxMindDbError> {
    let Some(rec) = decode::<AnonymousRec>(reader, ip)? else {
        return Ok(false);
    };
    info.anonymous = rec.is_anonymous.unwrap_or(false);
    info.vpn = rec.is_anonymous_vpn.unwrap_or(false);
    info.tor = rec.is_tor_exit_node.unwrap_or(false);
    info.hosting = rec.is_hosting_provider.unwrap_or(false);
    info.public_proxy = rec.is_public_proxy.unwrap_or(false);
    info.residential_proxy = rec.is_residential_proxy.unwrap_or(false);
    Ok(true)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epochs up to year 9999, else `?`.
fn format_epoch(epoch: u64) -> String {
    const MAX: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if epoch > MAX {
        return "?".to_owned();
    }
    let secs = epoch % 86_400;
    let Ok(days) = i64::try_from(epoch / 86_400) else {
        return "?".to_owned();
    };
    let (year, month, day) = crate::domain::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
