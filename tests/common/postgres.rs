//! A private PostgreSQL per test: `initdb` into a temp dir and `pg_ctl`
//! on a free port (never 5432), stopped (`-m immediate`) on drop. Run as
//! root (CI, these machines), the server runs as the `postgres` user,
//! which PostgreSQL's packages create; the binaries are found on PATH or
//! in `/usr/lib/postgresql/<version>/bin` (where Debian puts them).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
    running: bool,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The folder holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&p) {
            if d.join("initdb").exists() && d.join("pg_ctl").exists() {
                return Some(d);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether these tests can run here; outside CI a missing PostgreSQL
/// skips them with a note, in CI it fails.
pub fn available() -> bool {
    if bin_dir().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "PostgreSQL is not installed (apt-get install -y postgresql)"
    );
    eprintln!("note: PostgreSQL is not installed here; skipping (apt-get install -y postgresql)");
    false
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = bin_dir().expect("PostgreSQL binaries (initdb, pg_ctl)");
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        let mut s = PgServer {
            port: free_port(),
            bin,
            dir,
            as_postgres,
            running: false,
        };
        if as_postgres {
            // The server refuses to run as root: hand it the folder.
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(s.dir.path())
                .status()
                .is_ok_and(|st| st.success());
            assert!(ok, "chown of the PostgreSQL folder to `postgres` failed");
        }
        let data = s.data();
        let out = s
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "riskgate",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.restart();
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://riskgate@127.0.0.1:{}/postgres?connect_timeout=5",
            self.port
        )
    }

    /// Starts (again) on the same port and data.
    pub fn restart(&mut self) {
        assert!(!self.running);
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-o", &opts, "-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(
            status.success(),
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("PostgreSQL does not accept connections on {}", self.port);
    }

    /// Stops the server at once (`-m immediate`: like a crash).
    pub fn kill(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }

    /// The folder the server's files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}
