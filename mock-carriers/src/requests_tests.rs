use super::*;

fn smartca(account: &str) -> NewRequest {
    NewRequest {
        provider: Provider::SmartCa,
        signer: "001099012345".into(),
        transaction_id: "kyso-tx-1".into(),
        tran_code: "code".into(),
        display_text: "text".into(),
        documents: Vec::new(),
        behaviour: Behaviour::Approve,
        window: None,
        exclusive: false,
        extra: Extra::SmartCa {
            sp_id: account.into(),
        },
    }
}

/// A transaction belongs to the account that made it: another account's sign or repeat of
/// the same id is a conflict, and is not counted as a call on it.
#[test]
fn another_account_cannot_take_over_a_transaction() {
    let store = Store::new(Duration::from_secs(60));
    let (first, created) = store.submit(smartca("sp-a")).expect("first");
    assert!(created);
    assert!(matches!(
        store.submit(smartca("sp-b")),
        Err(SubmitError::Conflict)
    ));
    let tx = &first.transaction_id;
    assert!(matches!(
        store.repeat(Provider::SmartCa, tx, &first.signer, Some("sp-b")),
        Some(Err(SubmitError::Conflict))
    ));
    let calls = |store: &Store| store.stats().sign_requests.get(tx.as_str()).copied();
    let before = calls(&store);
    assert!(matches!(store.submit(smartca("sp-a")), Ok((_, false))));
    assert!(matches!(
        store.repeat(Provider::SmartCa, tx, &first.signer, Some("sp-a")),
        Some(Ok(_))
    ));
    assert_eq!(
        calls(&store),
        before.map(|n| n + 2),
        "only the owner's calls count"
    );
}
