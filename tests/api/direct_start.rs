//! A created session, and a pushed one, start their own step: with the scheduler not running
//! at all (the application built but never run), a session still reaches the phone and a
//! push still finishes it.

use std::sync::Arc;
use std::time::Duration;

use figment::providers::{Format as _, Toml};
use figment::Figment;
use kyso::config::Config;
use kyso::domain::{Session, SessionId, Status};
use kyso::engine::Engine;
use kyso::startup::Application;
use kyso::store::{Created, Event};
use tokio::sync::broadcast;

use crate::helpers::{new_session, root_path, smartca_session, spawn_mock, test_config_toml, Mock};

/// The next event of session `id` with `status`, within `wait`.
async fn event(
    rx: &mut broadcast::Receiver<Event>,
    id: &SessionId,
    status: Status,
    wait: Duration,
) -> Option<Event> {
    tokio::time::timeout(wait, async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.session_id == *id && ev.status == status => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await
    .ok()
}

/// The application built but never run (no scheduler, no HTTP server), over a mock whose
/// signers approve after `approve_delay_ms`.
async fn unscheduled(dir: &std::path::Path, approve_delay_ms: u64) -> (Application, Mock) {
    let mock = spawn_mock(dir, approve_delay_ms).await;
    let root = root_path(dir, &mock);
    let toml = test_config_toml(&dir.join("kyso.db"), mock.addr, &root);
    let config = Config::from_figment(Figment::from(Toml::string(&toml))).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = Application::with_listener(config, listener)
        .await
        .expect("app");
    (app, mock)
}

/// Creates `s` through the engine (which starts its first step itself); it must be new.
async fn create_new(engine: &Arc<Engine>, s: &Session, hash: u8) {
    let created = engine.create(new_session(s, None, hash, true)).await;
    assert!(matches!(created.expect("create"), Created::New(_)));
}

#[tokio::test]
async fn a_create_and_a_push_start_their_steps_without_the_scheduler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, _mock) = unscheduled(dir.path(), 100).await;
    let engine = app.engine().clone();
    let mut rx = engine.subscribe();

    let s = smartca_session("dvc-portal", "001099012345", "direct");
    create_new(&engine, &s, 1).await;
    assert!(
        event(
            &mut rx,
            &s.id,
            Status::AwaitingUser,
            Duration::from_secs(10)
        )
        .await
        .is_some(),
        "the create started its own step"
    );

    // The mock approves after 100 ms; each push checks the status once.
    let mut signed = None;
    for _ in 0..50 {
        assert!(engine
            .push(&s.id, "vnpt-smartca")
            .await
            .expect("push")
            .found());
        signed = event(&mut rx, &s.id, Status::Signed, Duration::from_millis(200)).await;
        if signed.is_some() {
            break;
        }
    }
    assert!(signed.is_some(), "a push started the status check itself");
}

/// A push that lands while the session's own step runs is kept by the engine and checked as
/// the step ends: nothing is written for it and no scheduler pass is needed. (Written to the
/// database instead, as it once was, it waited for a scheduler that here never runs.)
#[tokio::test]
async fn a_push_during_the_step_is_checked_when_the_step_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, _mock) = unscheduled(dir.path(), 0).await;
    let engine = app.engine().clone();
    let mut rx = engine.subscribe();

    let s = smartca_session("dvc-portal", "001099012346", "pushed-early");
    create_new(&engine, &s, 1).await;
    // The test's runtime has one thread: the step spawned by `create` has not run yet, so
    // this push certainly lands while it is in flight.
    assert!(engine
        .push(&s.id, "vnpt-smartca")
        .await
        .expect("push")
        .found());
    assert!(
        event(&mut rx, &s.id, Status::Signed, Duration::from_secs(10))
            .await
            .is_some(),
        "the push was checked when the sending step ended"
    );
    // A push for another provider's session of that id is not this session's news.
    let other = smartca_session("dvc-portal", "001099012347", "other-provider");
    create_new(&engine, &other, 2).await;
    assert!(!engine
        .push(&other.id, "viettel-sim")
        .await
        .expect("push")
        .found());
}
