//! The request book on its own: timed outcomes, expiry, decisions and bounded size.

use std::time::Duration;

use mock_carriers::behaviour::Behaviour;
use mock_carriers::pki::Provider;
use mock_carriers::requests::{
    DecideError, Decision, Extra, NewRequest, RequestStatus, Store, SubmitError,
};

fn new(tid: &str, signer: &str) -> NewRequest {
    NewRequest {
        provider: Provider::SmartCa,
        signer: signer.to_owned(),
        transaction_id: tid.to_owned(),
        tran_code: format!("code-{tid}"),
        display_text: "ma 4821".to_owned(),
        documents: Vec::new(),
        behaviour: Behaviour::for_signer(signer),
        window: None,
        exclusive: false,
        extra: Extra::None,
    }
}

#[test]
fn unanswered_prompts_expire_after_the_window_and_stay_expired() {
    let store = Store::with_limits(Duration::ZERO, Duration::from_millis(20), 10);
    store
        .submit(new("silent", "001099012208"))
        .expect("submitted");
    store
        .submit(new("manual", "001099012999"))
        .expect("submitted");
    assert!(store.settle_due().is_empty());
    std::thread::sleep(Duration::from_millis(40));
    let done = store.settle_due();
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|r| r.status == RequestStatus::Expired));
    let late = store.decide("manual", Decision::Approve);
    assert!(matches!(
        late,
        Err(DecideError::NotPending(RequestStatus::Expired))
    ));
}

#[test]
fn ordinary_signers_approve_and_401_signers_refuse_once_the_delay_passes() {
    let store = Store::with_limits(Duration::ZERO, Duration::from_secs(60), 10);
    store.submit(new("ok", "001099012345")).expect("submitted");
    store.submit(new("no", "001099012401")).expect("submitted");
    let mut done = store.settle_due();
    done.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    assert_eq!(done[0].status, RequestStatus::Rejected);
    assert_eq!(done[1].status, RequestStatus::Signed);
    assert!(
        store.settle_due().is_empty(),
        "each outcome is announced once"
    );
    let found = store.find("code-ok").expect("by tran_code");
    assert_eq!(found.transaction_id, "ok");
    assert!(found.completed_at.is_some());
}

#[test]
fn a_full_book_forgets_the_oldest_finished_request_and_refuses_when_all_are_pending() {
    let store = Store::with_limits(Duration::from_secs(60), Duration::from_secs(60), 2);
    store.submit(new("a", "001099012999")).expect("a");
    store.submit(new("b", "001099012999")).expect("b");
    assert!(matches!(
        store.submit(new("c", "001099012999")),
        Err(SubmitError::Full)
    ));
    store.decide("a", Decision::Reject).expect("rejected");
    store
        .submit(new("c", "001099012999"))
        .expect("room after eviction");
    assert!(store.find("a").is_none(), "the finished one was forgotten");
    assert!(store.find("b").is_some());
    assert_eq!(store.stats().prompts, 3);
}

#[test]
fn an_exclusive_request_refuses_a_second_one_for_the_same_signer_until_it_finishes() {
    let store = Store::with_limits(Duration::ZERO, Duration::from_secs(60), 10);
    let exclusive = |tid: &str| NewRequest {
        exclusive: true,
        ..new(tid, "84912345999")
    };
    let (first, _) = store.submit(exclusive("first")).expect("first");
    assert!(matches!(
        store.submit(exclusive("second")),
        Err(SubmitError::Busy)
    ));
    let (again, created) = store.submit(exclusive("first")).expect("repeat");
    assert!(
        !created,
        "a repeat of the same transaction is not a second request"
    );
    assert_eq!(again.id, first.id);
    store.decide(&first.id, Decision::Reject).expect("decided");
    store.submit(exclusive("second")).expect("free again");
}

#[test]
fn a_request_window_shorter_than_the_approve_delay_expires_it() {
    let store = Store::with_limits(Duration::from_millis(50), Duration::from_secs(60), 10);
    let (req, _) = store
        .submit(NewRequest {
            window: Some(Duration::from_millis(10)),
            ..new("short", "84912345678")
        })
        .expect("submitted");
    std::thread::sleep(Duration::from_millis(80));
    let done = store.settle_due();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, req.id);
    assert_eq!(done[0].status, RequestStatus::Expired);
}
