//! A throwaway OpenLDAP server (Debian's slapd) with a test CA, LDAP + StartTLS + LDAPS on
//! free ports, and a small directory. Adapted from
//! /work/shared/reference/recipes/start-slapd.sh; nothing outside its TempDir is touched.
//!
//! ```text
//! dc=example,dc=org
//!   cn=search                 service account (SERVICE_DN / SERVICE_PASSWORD)
//!   ou=people                 searchable anonymously
//!     uid=alice    gid 5000
//!     uid=bob      gid 6000
//!     uid=d(a)ve*  gid 5000   filter metacharacters in a real name
//!     uid=jürgen   gid 5000   non-ASCII name
//!   ou=staff                  entries below it visible only to the service account
//!     uid=carol    gid 5000
//! ```
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, require_binary, ChildGuard, TempDir};

pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
pub const STAFF_DN: &str = "ou=staff,dc=example,dc=org";
pub const SERVICE_DN: &str = "cn=search,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "search-service-pw";
/// The group the tests put in `[ldap] valid_gid`.
pub const VALID_GID: &str = "5000";

/// (uid, password, gidNumber, parent) of every user.
pub const USERS: &[(&str, &str, u32, &str)] = &[
    ("alice", "alice pw ä:1", 5000, PEOPLE_DN),
    ("bob", "bob-pw", 6000, PEOPLE_DN),
    ("d(a)ve*", "dave-pw", 5000, PEOPLE_DN),
    ("jürgen", "jürgen-pw", 5000, PEOPLE_DN),
    ("carol", "carol-pw", 5000, STAFF_DN),
];

pub fn password_of(uid: &str) -> &'static str {
    USERS
        .iter()
        .find(|u| u.0 == uid)
        .map(|u| u.1)
        .expect("a test user")
}

pub struct Slapd {
    // Declared before `dir`: fields drop in order, so slapd stops before its files go.
    guard: ChildGuard,
    /// `ldap://127.0.0.1:P` (plain, or StartTLS).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:Q`.
    pub ldaps_url: String,
    /// The CA that signed the server certificate.
    pub ca_pem: PathBuf,
    /// A CA that did not: verifying against it must fail.
    pub wrong_ca_pem: PathBuf,
    pub dir: TempDir,
}

impl Slapd {
    /// Start slapd and wait until both ports accept connections. Panics (with slapd's
    /// log) if it cannot start; retries with new ports if another test took them.
    pub fn start() -> Slapd {
        let slapd = require_binary("slapd", "slapd ldap-utils");
        let slapadd = require_binary("slapadd", "slapd ldap-utils");
        require_binary("openssl", "openssl");
        let dir = TempDir::new("slapd");
        let d = dir.path();
        make_certificates(d);
        std::fs::create_dir_all(d.join("db")).unwrap();
        std::fs::write(d.join("slapd.conf"), slapd_conf(d)).unwrap();
        std::fs::write(d.join("data.ldif"), data_ldif()).unwrap();
        run(Command::new(&slapadd)
            .arg("-q")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif")));

        let mut last_log = String::new();
        for _attempt in 0..3 {
            let (ldap_port, ldaps_port) = (free_port(), free_port());
            let log = std::fs::File::create(d.join("slapd.log")).unwrap();
            let child = Command::new(&slapd)
                // -d 0: stay in the foreground, so the guard owns the process.
                .args(["-d", "0", "-f"])
                .arg(d.join("slapd.conf"))
                .arg("-h")
                .arg(format!(
                    "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
                ))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn slapd");
            let mut guard = ChildGuard::new("slapd", child);
            if wait_until_listening(&mut guard, &[ldap_port, ldaps_port]) {
                return Slapd {
                    guard,
                    ldap_url: format!("ldap://127.0.0.1:{ldap_port}"),
                    ldaps_url: format!("ldaps://127.0.0.1:{ldaps_port}"),
                    ca_pem: d.join("ca.pem"),
                    wrong_ca_pem: d.join("wrong-ca.pem"),
                    dir,
                };
            }
            guard.kill();
            last_log = std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default();
        }
        panic!("slapd did not start; its log:\n{last_log}");
    }

    /// Stop the server now (to test "LDAP down").
    pub fn stop(&mut self) {
        self.guard.kill();
    }

    /// Freeze slapd (SIGSTOP) until the returned guard drops (SIGCONT), so that a
    /// failing test never leaves it stopped. The kernel still completes TCP handshakes
    /// from its listen backlog; nothing is ever answered.
    pub fn freeze(&self) -> Frozen {
        let pid = libc::pid_t::try_from(self.guard.child.id()).expect("a pid");
        signal(pid, libc::SIGSTOP);
        Frozen { pid }
    }
}

/// A slapd stopped with SIGSTOP; dropping this sends SIGCONT.
pub struct Frozen {
    pid: libc::pid_t,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.pid, libc::SIGCONT);
    }
}

fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid this harness spawned and still owns (not yet reaped).
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// True when every port accepts connections; false when slapd exits first (e.g. a port
/// was taken) or 10 s pass.
fn wait_until_listening(guard: &mut ChildGuard, ports: &[u16]) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if matches!(guard.child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if ports
            .iter()
            .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Test CA, server certificate (SAN 127.0.0.1 and localhost) signed by it, and an
/// unrelated "wrong" CA. EC keys: much faster to make than RSA.
pub fn make_certificates(d: &Path) {
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "test-ca"), ("wrong-ca", "wrong-ca")] {
        run(Command::new("openssl")
            .current_dir(d)
            .args(["req", "-x509"])
            .args(new_key)
            .args(["-days", "2", "-subj", &format!("/CN={cn}")])
            .args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ]));
    }
    run(Command::new("openssl")
        .current_dir(d)
        .arg("req")
        .args(new_key)
        .args([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]));
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").current_dir(d).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]));
}

fn slapd_conf(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
directory {d}/db
index objectClass,uid,gidNumber eq
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to dn.children="{STAFF_DN}"
  by dn.exact="{SERVICE_DN}" read
  by self read
  by anonymous auth
  by * none
access to *
  by * read
"#
    )
}

fn data_ldif() -> String {
    let mut ldif = format!(
        "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: search\n\
         userPassword: {SERVICE_PASSWORD}\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {STAFF_DN}\nobjectClass: organizationalUnit\nou: staff\n\n"
    );
    for (i, (uid, password, gid, parent)) in USERS.iter().enumerate() {
        // Passwords in clear text: slapd compares them as they are, and the tests need
        // no slappasswd run. Values are base64 (`::`) so that any character is safe.
        let attributes = [
            ("dn", format!("uid={uid},{parent}")),
            ("objectClass", "inetOrgPerson".into()),
            ("objectClass", "posixAccount".into()),
            ("uid", uid.to_string()),
            ("cn", uid.to_string()),
            ("sn", "Example".into()),
            ("uidNumber", (10_000 + i).to_string()),
            ("gidNumber", gid.to_string()),
            ("homeDirectory", "/home/user".into()),
            ("userPassword", password.to_string()),
        ];
        for (name, value) in attributes {
            ldif.push_str(&format!("{name}:: {}\n", base64(value.as_bytes())));
        }
        ldif.push('\n');
    }
    ldif
}

fn base64(bytes: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64, Encoder};
    Base64::encode_to_string(bytes).unwrap()
}
