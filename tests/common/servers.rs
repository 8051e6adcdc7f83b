//! Real servers the HTTP tests run against: a private nginx (Debian
//! `nginx-light`) and a private tinyproxy, each with a config written into
//! a temporary directory, on a free loopback port, stopped on drop.
//!
//! Binaries come from `NGINX` / `TINYPROXY`, else `PATH` or `/usr/sbin`
//! (`scripts/test` installs both packages).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process with its directory; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install {package} (scripts/test does) or set {var}");
}

/// Starts `program` on a config made from `template` (`@DIR@` and `@PORT@`
/// filled in), after `files` are written into its directory; retries on
/// the rare race for the free port.
async fn start(
    template: &str,
    files: &[(&str, &[u8])],
    command: impl Fn(&Path, &Path) -> Command,
) -> Server {
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("a server file is written");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = template
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@PORT@", &port.to_string());
        let conf_path = dir.path().join("server.conf");
        std::fs::write(&conf_path, conf).expect("the config is written");
        let mut child = command(dir.path(), &conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken: try another
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Server { child, port, dir };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the server did not start listening");
}

/// nginx with `template` as its whole config.
pub async fn nginx(template: &str, files: &[(&str, &[u8])]) -> Server {
    let bin = binary("NGINX", "nginx", "nginx-light");
    start(template, files, |dir, conf| {
        let mut c = Command::new(&bin);
        c.args(["-p", &dir.display().to_string(), "-c"]).arg(conf);
        c
    })
    .await
}

/// tinyproxy in the foreground, on `127.0.0.1`, with `extra` config lines
/// (e.g. `BasicAuth user password`).
pub async fn tinyproxy(extra: &str) -> Server {
    let bin = binary("TINYPROXY", "tinyproxy", "tinyproxy");
    let template = format!(
        "Port @PORT@\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\n\
         LogLevel Connect\nLogFile \"@DIR@/tinyproxy.log\"\nPidFile \"@DIR@/tinyproxy.pid\"\n\
         User nobody\nGroup nogroup\n{extra}\n"
    );
    start(&template, &[], |dir, conf| {
        // tinyproxy drops to `nobody`, who must be able to write its log.
        let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
        let mut c = Command::new(&bin);
        c.args(["-d", "-c"]).arg(conf);
        c
    })
    .await
}

/// The multipart checker (`tests/fixtures/multipart_checker.py`, Python's
/// own MIME parser): every POST answers with the parts it found, `GET`
/// with every answer so far.
pub struct MultipartChecker {
    child: tokio::process::Child,
    pub port: u16,
}

impl MultipartChecker {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every answer the checker gave, in order.
    pub async fn log(&self) -> Vec<serde_json::Value> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("the checker accepts");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /log HTTP/1.0\r\nHost: checker\r\n\r\n")
            .await
            .expect("the request is sent");
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .await
            .expect("the checker answers");
        let text = String::from_utf8_lossy(&reply);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the log is JSON ({e}): {text}"))
    }
}

impl Drop for MultipartChecker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts the multipart checker with `python3` on a free loopback port.
pub async fn multipart_checker() -> MultipartChecker {
    use tokio::io::AsyncBufReadExt;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/multipart_checker.py"
    );
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the multipart checker");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("the checker says its port within 10 s")
    .expect("its stdout reads");
    let port = first
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the checker's first line names its port: {first:?}"));
    MultipartChecker { child, port }
}
