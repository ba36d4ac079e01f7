//! Online revocation against `openssl ocsp` serving the fixture CA's index, and against a
//! responder and CRL that are not there.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kyso::verify::{OnlineOptions, RevocationPolicy, Verifier};

use crate::{dir, Judge};

/// `openssl ocsp` serving the fixture CA's index on a free loopback port; killed on drop.
struct Responder {
    child: Child,
    port: u16,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_responder() -> Responder {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("openssl")
        .current_dir(dir())
        .args(["ocsp", "-index", "ca/index.txt", "-port", &port.to_string()])
        .args([
            "-rsigner",
            "ocsp-responder.pem",
            "-rkey",
            "ocsp-responder.key",
        ])
        .args(["-CA", "issuing-ca.pem"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl ocsp starts");
    // It prints `ACCEPT …` once listening. A probe connection would not do: the responder
    // serves one connection at a time and gives up on one that closes without a request.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    let responder = Responder { child, port };
    rx.recv_timeout(Duration::from_secs(10))
        .expect("openssl ocsp listens within 10 s");
    responder
}

#[tokio::test]
async fn openssl_s_own_responder_answers_good_and_revoked_with_our_nonce() {
    let responder = start_responder();
    // The fixtures' AIA names 127.0.0.1:18888; point it at the port we got.
    let options = OnlineOptions {
        timeout: Duration::from_secs(5),
        rewrites: vec![(
            "http://127.0.0.1:18888".into(),
            format!("http://127.0.0.1:{}", responder.port),
        )],
    };
    let verifier = Verifier::online(&options).expect("client builds");
    let good = verifier
        .judge_with("person", RevocationPolicy::Require)
        .await
        .expect("person is good");
    assert_eq!(good.verification.revocation, "good");
    let detail = good.verification.revocation_detail.unwrap_or_default();
    assert!(detail.starts_with("OCSP"), "{detail}");
    let refusal = verifier
        .judge_with("revoked", RevocationPolicy::Require)
        .await
        .expect_err("revoked");
    assert_eq!(refusal.code(), "revoked_certificate", "{refusal}");
    drop(responder);
}

#[tokio::test]
async fn an_unreachable_responder_and_crl_leave_prefer_unknown_and_require_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = OnlineOptions {
        timeout: Duration::from_secs(2),
        rewrites: vec![(
            "http://127.0.0.1:18888".into(),
            format!("http://127.0.0.1:{port}"),
        )],
    };
    let verifier = Verifier::online(&options).expect("client builds");
    let verdict = verifier
        .judge_with("person", RevocationPolicy::Prefer)
        .await
        .expect("prefer");
    assert_eq!(verdict.verification.revocation, "unknown");
    let refusal = verifier
        .judge_with("person", RevocationPolicy::Require)
        .await
        .expect_err("require");
    assert_eq!(refusal.code(), "untrusted_certificate");
    assert!(refusal.to_string().contains("revocation"), "{refusal}");
}
