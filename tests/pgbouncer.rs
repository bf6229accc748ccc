//! A real PgBouncer for the pooler tests, started and stopped by the harness.

use std::{path::PathBuf, process::Command};

use crate::harness::{TestCluster, closed_port, scratch_dir, test_password};

/// A real PgBouncer in front of a test cluster, in `transaction` or `session` mode, on a
/// port of its own (never 6543) and with nothing in the URL that hints at a pooler.
/// Stopped on drop. `.ci/run` installs it; elsewhere the test says what is missing.
pub struct Pgbouncer {
    child: std::process::Child,
    dir: PathBuf,
    pub port: u16,
    /// A direct URL to the server behind it, for comparisons.
    pub backend: Backend,
}

/// The server behind a pooler, reached directly.
pub struct Backend {
    url: String,
}

impl Backend {
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Pgbouncer {
    pub fn start(cluster: &TestCluster, mode: &str, pool_size: u32) -> Pgbouncer {
        Pgbouncer::start_routing(cluster, None, mode, pool_size)
    }

    /// [`start`](Self::start), with the database `template1` routed to another cluster
    /// (`other`): one endpoint where database names reach different servers.
    pub fn start_routing(cluster: &TestCluster, other: Option<&TestCluster>, mode: &str, pool_size: u32) -> Pgbouncer {
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("pgbouncer is not installed: the pooler tests need a real one (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer); .ci/run installs it");
        let dir = scratch_dir("pgbouncer");
        let port = closed_port();
        let users = "\"postgres\" \"\"\n\"postgres.yovbdmjwrrgardkgrenc\" \"\"\n";
        std::fs::write(dir.join("users.txt"), users).unwrap();
        let routed = other.map_or(String::new(), |other| {
            format!(
                "template1 = host=127.0.0.1 port={} dbname=template1 user=postgres password={}\n",
                other.port(),
                test_password()
            )
        });
        let ini = format!(
            "[databases]\npostgres = host=127.0.0.1 port={} dbname=postgres user=postgres password={}\n{routed}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 100\nignore_startup_parameters = extra_float_digits\nlogfile = {log}\npidfile = {pid}\n",
            cluster.port(),
            test_password(),
            users = dir.join("users.txt").display(),
            log = dir.join("pgbouncer.log").display(),
            pid = dir.join("pgbouncer.pid").display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        // PgBouncer refuses to run as root, like the server.
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut command = if root {
            Command::new("chown").arg("-R").arg("postgres:").arg(&dir).status().unwrap();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.arg(dir.join("pgbouncer.ini")).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let child = command.spawn().unwrap();
        let bouncer = Pgbouncer { child, dir, port, backend: Backend { url: cluster.url() } };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return bouncer;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "pgbouncer did not start: {}",
            std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default()
        );
    }

    /// A URL through the pooler, as `user`.
    pub fn url(&self, user: &str) -> String {
        format!("postgresql://{user}:{}@127.0.0.1:{}/postgres", test_password(), self.port)
    }

    /// A plain client through the pooler, as an application would be.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to PgBouncer.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
