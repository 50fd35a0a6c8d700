//! A private `redis-server` per test, on a free port (never 6379), killed
//! on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        self.spawn(&[]);
    }

    fn spawn(&mut self, extra: &[&str]) {
        assert!(self.child.is_none());
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(extra)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install -y redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(out) = self.cli(&["PING"]) {
                if out.trim() == "PONG" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--no-auth-warning"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The fields of the stats hash `key` once the planted `m:dead` marker
    /// field is gone (a merge swept it); fails after 5 s.
    pub async fn fields_once_swept(&self, key: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let fields = self.cli(&["HKEYS", key]).unwrap();
            if !fields.contains("m:dead") {
                return fields;
            }
            assert!(Instant::now() < deadline, "never swept: {fields}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `INFO commandstats` as (command, calls).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let text = self.cli(&["INFO", "commandstats"]).unwrap();
        text.lines()
            .filter_map(|l| {
                let l = l.strip_prefix("cmdstat_")?;
                let (name, rest) = l.split_once(':')?;
                let calls = rest.strip_prefix("calls=")?.split(',').next()?;
                Some((name.to_string(), calls.parse().ok()?))
            })
            .collect()
    }
}

/// A private Redis Cluster: `n` masters on free ports, no replicas, all
/// 16384 slots assigned (`redis-cli --cluster create`).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(n: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                let mut s = RedisServer {
                    port: free_port(),
                    child: None,
                    dir: tempfile::tempdir().unwrap(),
                };
                let conf = s.dir.path().join("nodes.conf");
                s.spawn(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf.to_str().unwrap(),
                    "--cluster-node-timeout",
                    "2000",
                ]);
                s
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli on PATH");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster { nodes };
        // Wait until every node agrees the cluster is up.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if c.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_ok_and(|o| o.contains("cluster_state:ok"))
            }) {
                return c;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not reach cluster_state:ok");
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `INFO commandstats` summed over the nodes.
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let mut all = std::collections::BTreeMap::new();
        for n in &self.nodes {
            for (k, v) in n.command_calls() {
                *all.entry(k).or_insert(0) += v;
            }
        }
        all
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
